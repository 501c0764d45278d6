"""The scheduled ops status task: the runbook's invariant checks, one log line each, a breach
logged at ERROR and never a task failure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from app.ops.status import STATUS_CHECKS
from app.tasks.catalog import OPS_STATUS, STRIPE_EVENT, scheduled
from tests.e2e.conftest import Stack, worker_task
from tests.inventory.conftest import make_calendar
from tests.test_observability import EVENT_FIELDS, _events, _fields, json_lines  # noqa: F401


def _checks(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {line["check"]: line for line in _events(lines, "invariant_check")}


async def test_status_logs_every_check_and_a_breach_at_error(
    stack: Stack,
    json_lines: Callable[[], list[dict[str, Any]]],  # noqa: F811
) -> None:
    """On a consistent database the task answers 200 with nothing breached and logs one
    INFO invariant_check line per check (name, found 0, threshold, SEV), then one INFO
    ops_status line with every check's count. With one night's held counter off by one, the
    next run answers 200 again, naming reconcile as breached, and logs reconcile at ERROR
    with found 1 and SEV0 while the others stay INFO, and its ops_status line at ERROR.
    Its access lines carry the task's outcome. The task is scheduled every 15 minutes."""
    assert OPS_STATUS in scheduled() and OPS_STATUS.schedule == "*/15 * * * *"
    async with stack.pool.acquire() as conn:
        cal = await make_calendar(conn, [("std", 2, 3, 30000)], days=5)
    names = [check.name for check in STATUS_CHECKS]

    assert await worker_task(stack, OPS_STATUS.path, {}) == {"outcome": "checked", "breached": []}
    clear = _checks(json_lines())
    assert list(clear) == names
    for check in STATUS_CHECKS:
        line = clear[check.name]
        assert line | {"found": 0, "threshold": check.threshold, "sev": check.severity} == line
        assert line["severity"] == "INFO"
        assert _fields(line) == EVENT_FIELDS["invariant_check"]
    [status] = _events(json_lines(), "ops_status")
    assert status["severity"] == "INFO" and status["breached"] == []
    assert status["checks"] == dict.fromkeys(names, 0)

    drift = "UPDATE ari_days SET inv_held = inv_held + $3 WHERE room_type_id = $1 AND date = $2"
    room = cal.room_type_ids["std"]
    await stack.pool.execute(drift, room, cal.start, 1)
    try:
        answer = await worker_task(stack, OPS_STATUS.path, {})
    finally:
        await stack.pool.execute(drift, room, cal.start, -1)
    assert answer == {"outcome": "checked", "breached": ["reconcile"]}
    lines = json_lines()
    breached = [line for line in _events(lines, "invariant_check") if line["severity"] == "ERROR"]
    assert len(breached) == 1
    assert breached[0] | {"check": "reconcile", "found": 1, "sev": "SEV0"} == breached[0]
    assert len(_events(lines, "invariant_check")) == 2 * len(names)
    status = _events(lines, "ops_status")[-1]
    assert status["severity"] == "ERROR" and status["breached"] == ["reconcile"]
    assert status["checks"] == dict.fromkeys(names, 0) | {"reconcile": 1}
    assert _fields(status) == {"breached", "checks"}

    access = [line for line in _events(lines, "http_request") if line["path"] == OPS_STATUS.path]
    assert [(line["status"], line["outcome"]) for line in access] == [(200, "checked")] * 2
    assert all(_fields(line) >= EVENT_FIELDS["http_request"] for line in access)


async def test_a_late_queue_and_a_paused_provider_are_breaches_of_the_task(
    stack: Stack,
    json_lines: Callable[[], list[dict[str, Any]]],  # noqa: F811
) -> None:
    """The task reads the queues through Cloud Tasks too: a paused provider and a webhooks
    task waiting ten minutes past its time (its queue paused) are logged as breached
    invariant_check lines and named on one ERROR ops_status line, with the lateness in
    seconds as the backlog's count."""
    await stack.pool.execute(
        "INSERT INTO provider_pauses (provider, paused_by) VALUES ('whatsapp', 'cli:ops')"
    )
    stack.emulator.pause("webhooks")
    due = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    await stack.queue.enqueue(STRIPE_EVENT, "stripe-evt_late", {"event_id": "evt_late"}, due)

    answer = await worker_task(stack, OPS_STATUS.path, {})
    assert answer == {"outcome": "checked", "breached": ["backlog-webhooks", "paused-providers"]}
    lines = json_lines()
    breached = {
        line["check"]: line
        for line in _events(lines, "invariant_check")
        if line["severity"] == "ERROR"
    }
    assert set(breached) == {"backlog-webhooks", "paused-providers"}
    assert breached["backlog-webhooks"]["found"] >= 600
    [status] = _events(lines, "ops_status")
    assert status["severity"] == "ERROR"
    assert status["breached"] == ["backlog-webhooks", "paused-providers"]
    assert status["checks"]["paused-providers"] == 1 and status["checks"]["backlog-holds"] == 0
