"""`ops status`: every check of the runbook's daily routine against its threshold, each made
to happen in a real database (and a real local Cloud Tasks), and clean on a healthy one."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import orjson
import pytest

from app import cli
from app.dev.postgres import free_port
from app.dev.tasks_emulator import TasksEmulator
from app.ops.status import BACKLOG_LATE_SECONDS, STATUS_CHECKS
from app.settings import Settings
from app.tasks.catalog import CATALOG, QUEUES
from app.tasks.queue import TaskQueue, queue_config
from tests.inventory.conftest import Calendar, make_calendar
from tests.support import app_env, run_cli_async

SERVICE_ACCOUNT = "tasks@hotelly-test.iam.gserviceaccount.com"


@pytest.fixture
async def emulator() -> AsyncIterator[TasksEmulator]:
    """A local Cloud Tasks whose tasks go nowhere (queues under test are paused)."""
    running = TasksEmulator(grpc_port=free_port(), certs_port=free_port())
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def tasks_settings(make_settings: Callable[..., Settings], emulator: TasksEmulator) -> Settings:
    return make_settings(
        "worker", tasks_emulator_host=emulator.host, tasks_service_account=SERVICE_ACCOUNT
    )


async def late_task(settings: Settings, emulator: TasksEmulator, queue: str, late: int) -> None:
    """A task of ``queue`` due ``late`` seconds ago, kept waiting: its queue is paused."""
    emulator.pause(queue)
    kind = next(kind for kind in CATALOG if kind.queue == queue)
    tasks = TaskQueue(queue_config(settings))
    try:
        due = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=late)
        await tasks.enqueue(kind, kind.task_name(f"late-{late}"), {}, schedule_at=due)
    finally:
        await tasks.close()


async def run_status(conn: asyncpg.Connection, settings: Settings, capsys: Any) -> tuple[int, Any]:
    """`ops status` in this process: its exit code and its last line, the JSON summary."""
    code = await cli._ops_status(conn, settings, argparse.Namespace())
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(STATUS_CHECKS) + 1, lines
    return code, orjson.loads(lines[-1])


# ---- each problem, made to happen ------------------------------------------------------


async def _hold(conn: asyncpg.Connection, cal: Calendar, status: str, expired_mins: int) -> Any:
    return await conn.fetchval(
        "INSERT INTO holds (property_id, status, checkin, checkout, guests, total_cents,"
        " currency, expires_at, create_idempotency_key, request_fingerprint, closed_at)"
        " VALUES ($1, $2, $3::date, $3::date + 1, 2, 30000, 'BRL',"
        " now() - make_interval(mins => $4),"
        " gen_random_uuid()::text, 'f', CASE WHEN $2 = 'active' THEN NULL ELSE now() END)"
        " RETURNING id",
        cal.property.id,
        status,
        cal.start,
        expired_mins,
    )


async def stuck_hold(conn: asyncpg.Connection, cal: Calendar, mins: int) -> None:
    """An active hold ``mins`` minutes past its expiry."""
    await _hold(conn, cal, "active", mins)


async def payment_without_reservation(conn: asyncpg.Connection, cal: Calendar, mins: int) -> None:
    """A payment of ``mins`` minutes ago on an expired hold, waiting for its refund."""
    hold_id = await _hold(conn, cal, "expired", mins + 30)
    await conn.execute(
        "INSERT INTO payments (provider, provider_object_id, hold_id, status, amount_cents,"
        " currency, created_at) VALUES ('stripe', 'cs_test_' || gen_random_uuid(), $1,"
        " 'needs_refund', 30000, 'brl', now() - make_interval(mins => $2))",
        hold_id,
        mins,
    )


async def stale_receipt(conn: asyncpg.Connection, cal: Calendar, mins: int) -> None:
    """A Stripe event received and enqueued ``mins`` minutes ago, never processed."""
    await conn.execute(
        "INSERT INTO processed_events (source, external_id, event_type, received_at,"
        " enqueued_at) VALUES ('stripe', 'evt_' || gen_random_uuid(), 'charge.refunded',"
        " now() - make_interval(mins => $1), now() - make_interval(mins => $1))",
        mins,
    )


async def outbox_row(conn: asyncpg.Connection, mins: int, dead: bool) -> None:
    """An outbox row due ``mins`` minutes ago and not relayed (or set aside: dead)."""
    await conn.execute(
        "INSERT INTO outbox_events (event_type, aggregate_type, aggregate_id, next_attempt_at,"
        " dead_at) VALUES ('hold.expired', 'hold', 'h', now() - make_interval(mins => $1),"
        " CASE WHEN $2 THEN now() END)",
        mins,
        dead,
    )


async def reply(conn: asyncpg.Connection, cal: Calendar, status: str, mins: int) -> None:
    """A reply to a guest in ``status`` since ``mins`` minutes ago."""
    contact = await conn.fetchval(
        "INSERT INTO contacts (contact_hash, phone_encrypted)"
        " VALUES (gen_random_uuid()::text, '\\x00') RETURNING contact_hash"
    )
    conversation = await conn.fetchval(
        "INSERT INTO conversations (property_id, contact_hash) VALUES ($1, $2) RETURNING id",
        cal.property.id,
        contact,
    )
    await conn.execute(
        "INSERT INTO messages (conversation_id, direction, body_encrypted, status,"
        " created_at, updated_at) VALUES ($1, 'out', '\\x00', $2,"
        " now() - make_interval(mins => $3), now() - make_interval(mins => $3))",
        conversation,
        status,
        mins,
    )


async def calendar_unsynced(conn: asyncpg.Connection, cal: Calendar, mins: int) -> None:
    """A channel calendar to import, created ``mins`` minutes ago and never synced."""
    await conn.execute(
        "INSERT INTO calendars (property_id, room_type_id, name, import_url_sealed,"
        " export_digest, created_at) VALUES ($1, $2, 'airbnb', 'sealed', 'd',"
        " now() - make_interval(mins => $3))",
        cal.property.id,
        cal.room_type_ids["std"],
        mins,
    )


async def conflict(conn: asyncpg.Connection, cal: Calendar) -> None:
    """A block whose first night it could not take."""
    await conn.execute(
        "INSERT INTO blocks (property_id, room_type_id, source, checkin, checkout, units,"
        " conflict_nights, conflict_since) VALUES ($1, $2, 'manual', $3::date, $3::date + 1, 1,"
        " ARRAY[$3::date], now())",
        cal.property.id,
        cal.room_type_ids["std"],
        cal.start,
    )


async def pause_stripe(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "INSERT INTO provider_pauses (provider, paused_by, reason)"
        " VALUES ('stripe', 'cli:ops', 'test')"
    )


Problem = Callable[[asyncpg.Connection, Calendar, Settings, TasksEmulator], Awaitable[None]]
PROBLEMS: dict[str, Problem] = {
    "reconcile": lambda conn, cal, s, e: conn.execute(
        "UPDATE ari_days SET inv_held = inv_held + 1 WHERE room_type_id = $1 AND date = $2",
        cal.room_type_ids["std"],
        cal.start,
    ),
    "stuck-holds": lambda conn, cal, s, e: stuck_hold(conn, cal, 6),
    "payments-without-reservation": lambda conn, cal, s, e: payment_without_reservation(
        conn, cal, 16
    ),
    "stale-receipts": lambda conn, cal, s, e: stale_receipt(conn, cal, 11),
    "outbox-overdue": lambda conn, cal, s, e: outbox_row(conn, 6, dead=False),
    "outbox-dead": lambda conn, cal, s, e: outbox_row(conn, 0, dead=True),
    "replies-queued": lambda conn, cal, s, e: reply(conn, cal, "queued", 6),
    "replies-failed": lambda conn, cal, s, e: reply(conn, cal, "failed", 60),
    "stale-calendars": lambda conn, cal, s, e: calendar_unsynced(conn, cal, 31),
    "conflicts": lambda conn, cal, s, e: conflict(conn, cal),
    **{
        f"backlog-{queue}": lambda conn, cal, s, e, q=queue: late_task(
            s, e, q, BACKLOG_LATE_SECONDS + 60
        )
        for queue in QUEUES
    },
    "paused-providers": lambda conn, cal, s, e: pause_stripe(conn),
}


def test_every_check_has_a_problem_here() -> None:
    """The table below the parametrized test covers every check of STATUS_CHECKS."""
    assert set(PROBLEMS) == {check.name for check in STATUS_CHECKS}


@pytest.mark.parametrize("name", list(PROBLEMS))
async def test_each_threshold_breached_exits_1_naming_only_it(
    name: str,
    conn: asyncpg.Connection,
    make_settings: Callable[..., Settings],
    emulator: TasksEmulator,
    capsys: Any,
) -> None:
    """With the one problem a check looks for made to happen just past its threshold (its
    grace where it has one), `ops status` exits 1, its summary names that check alone as
    breached, and its line reads BREACHED with the command to run next."""
    settings = tasks_settings(make_settings, emulator)
    cal = await make_calendar(conn, [("std", 2, 3, 30000)], days=5)
    await PROBLEMS[name](conn, cal, settings, emulator)
    try:
        code, summary = await run_status(conn, settings, capsys)
    finally:
        if name == "reconcile":  # the fixture checks the calendar after every test
            await conn.execute(
                "UPDATE ari_days SET inv_held = inv_held - 1 WHERE room_type_id = $1 AND date = $2",
                cal.room_type_ids["std"],
                cal.start,
            )
    assert (code, summary["status"], summary["breached"]) == (1, "breached", [name])
    [found] = [check for check in summary["checks"] if check["check"] == name]
    assert found["breached"] and found["found"] > found["threshold"]


async def test_a_healthy_system_and_problems_within_their_grace_exit_0(
    conn: asyncpg.Connection,
    make_settings: Callable[..., Settings],
    emulator: TasksEmulator,
    capsys: Any,
) -> None:
    """A healthy database exits 0 with every check at 0; so does one whose problems are all
    younger than their check's grace: a hold 1 minute past expiry, a refund-pending payment
    of 10 minutes, a receipt unfinished for 5, an outbox row and a reply 1 minute overdue, a
    reply that failed two days ago, a calendar created 10 minutes ago and never synced, and a
    task due a minute ago. Each line shows the value, the threshold and the SEV."""
    settings = tasks_settings(make_settings, emulator)
    cal = await make_calendar(conn, [("std", 2, 3, 30000)], days=5)
    code, summary = await run_status(conn, settings, capsys)
    assert (code, summary["status"], summary["breached"]) == (0, "ok", [])
    assert [check["found"] for check in summary["checks"]] == [0] * len(STATUS_CHECKS)
    assert [check["check"] for check in summary["checks"]] == [c.name for c in STATUS_CHECKS]

    await stuck_hold(conn, cal, 1)
    await payment_without_reservation(conn, cal, 10)
    await stale_receipt(conn, cal, 5)
    await outbox_row(conn, 1, dead=False)
    await reply(conn, cal, "queued", 1)
    await reply(conn, cal, "failed", 48 * 60)
    await calendar_unsynced(conn, cal, 10)
    await late_task(settings, emulator, "holds", 60)
    code = await cli._ops_status(conn, settings, argparse.Namespace())
    lines = capsys.readouterr().out.strip().splitlines()
    summary = orjson.loads(lines[-1])
    assert (code, summary["breached"]) == (0, [])
    holds = next(c for c in summary["checks"] if c["check"] == "backlog-holds")
    assert holds["tasks"] == 1 and 60 <= holds["found"] < BACKLOG_LATE_SECONDS
    assert holds["state"] == "PAUSED" and holds["unit"] == "seconds"
    for line, check in zip(lines[:-1], STATUS_CHECKS, strict=True):
        assert line.startswith("ok") and check.name in line, line
        assert f"(threshold {check.threshold}" in line and check.severity in line, line


async def test_a_backlog_that_cannot_be_read_is_breached_with_why(
    conn: asyncpg.Connection, make_settings: Callable[..., Settings], capsys: Any
) -> None:
    """Without the Cloud Tasks project the queues cannot be read: each backlog check is
    breached with its value unknown and the reason, and the status exits 1 — a status that
    could not look at the queues never says all is well."""
    settings = make_settings("worker", tasks_project=None)
    code, summary = await run_status(conn, settings, capsys)
    backlog = {f"backlog-{queue}" for queue in QUEUES}
    assert code == 1 and set(summary["breached"]) == backlog
    for check in summary["checks"]:
        if check["check"] in backlog:
            assert check["found"] is None and "TASKS_PROJECT" in check["error"]


async def test_the_command_line_prints_one_screen_then_json(
    db_url: str, conn: asyncpg.Connection, emulator: TasksEmulator
) -> None:
    """`python -m app ops status` as an operator runs it: a line per check, the JSON summary
    last, exit 0 on a healthy system; a paused provider makes it exit 1, its line BREACHED
    with the command that ends the pause."""
    await make_calendar(conn, [("std", 2, 3, 30000)], days=5)
    env = app_env(
        DATABASE_URL=db_url,
        TASKS_PROJECT="p",
        TASKS_LOCATION="l",
        TASKS_EMULATOR_HOST=emulator.host,
        WORKER_URL="http://127.0.0.1:9",
        TASKS_SERVICE_ACCOUNT=SERVICE_ACCOUNT,
    )

    async def status() -> tuple[int, list[str]]:
        return await run_cli_async(env, "ops", "status")

    code, lines = await status()
    assert code == 0 and orjson.loads(lines[-1])["status"] == "ok", lines
    assert len(lines) == len(STATUS_CHECKS) + 1
    await pause_stripe(conn)
    code, lines = await status()
    assert code == 1 and orjson.loads(lines[-1])["breached"] == ["paused-providers"]
    [paused] = [line for line in lines[:-1] if "paused-providers" in line]
    assert paused.startswith("BREACHED") and "ops resume" in paused
