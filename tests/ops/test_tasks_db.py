"""`ops tasks` (runbook §7.6) against the local Cloud Tasks' queue statistics, and `ops db`
(§7.7) on a database where a test holds a transaction open and makes another wait for it."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app import db
from app.deploy.pools import declared_pools as read_pools
from app.dev.postgres import free_port
from app.dev.servers import start_in_loop
from app.dev.tasks_emulator import TasksEmulator
from app.ops.db_health import declared_pools
from app.ops.status import BACKLOG_LATE_SECONDS
from app.ops.tasks_backlog import QueueBacklog, read_backlog
from app.settings import Settings
from app.tasks.catalog import HOLD_EXPIRE, QUEUES, WHATSAPP_SEND
from app.tasks.queue import TaskQueue, queue_config
from tests.inventory.conftest import make_calendar
from tests.ops.test_status import SERVICE_ACCOUNT, emulator, tasks_settings  # noqa: F401
from tests.support import app_env, eventually, run_cli_async, serve_app


async def _cli(env: dict[str, str], *args: str) -> tuple[int, list[str], dict[str, Any]]:
    """`python -m app …` without blocking the loop that serves the emulator."""
    code, lines = await run_cli_async(env, *args)
    return code, lines[:-1], orjson.loads(lines[-1])


# ---- ops tasks ---------------------------------------------------------------------------


async def test_ops_tasks_shows_each_queue_depth_and_how_late_its_soonest_task_is(
    db_url: str,
    make_settings: Callable[..., Settings],
    emulator: TasksEmulator,  # noqa: F811
) -> None:
    """Three expiry tasks due in an hour make the holds queue 3 deep and on time (its soonest
    due time is the earliest of theirs); two sends due ten minutes ago in a paused messages
    queue make it 2 deep and 600 s late, past the threshold, so `ops tasks` exits 1 naming
    it. One line per queue, the JSON summary last; the empty queues read 0 tasks."""
    settings = tasks_settings(make_settings, emulator)
    env = app_env(
        DATABASE_URL=db_url,
        TASKS_PROJECT="p",
        TASKS_LOCATION="l",
        TASKS_EMULATOR_HOST=emulator.host,
        WORKER_URL="http://127.0.0.1:9",
        TASKS_SERVICE_ACCOUNT=SERVICE_ACCOUNT,
    )
    code, lines, summary = await _cli(env, "ops", "tasks")
    assert (code, summary["breached"]) == (0, []), lines
    assert [check["tasks"] for check in summary["checks"]] == [0] * len(QUEUES)

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    emulator.pause("messages")
    queue = TaskQueue(queue_config(settings))
    try:
        for minutes in (60, 61, 62):
            due = now + dt.timedelta(minutes=minutes)
            await queue.enqueue(HOLD_EXPIRE, f"expire-{minutes}", {}, due)
        for n in (1, 2):
            await queue.enqueue(WHATSAPP_SEND, f"send-{n}", {}, now - dt.timedelta(minutes=10))
    finally:
        await queue.close()

    code, lines, summary = await _cli(env, "ops", "tasks")
    assert (code, summary["breached"]) == (1, ["backlog-messages"])
    queues = {check["queue"]: check for check in summary["checks"]}
    assert list(queues) == list(QUEUES) and len(lines) == len(QUEUES)
    holds, messages = queues["holds"], queues["messages"]
    assert (holds["tasks"], holds["found"], holds["state"]) == (3, 0, "RUNNING")
    assert dt.datetime.fromisoformat(holds["oldest_due"]) == now + dt.timedelta(minutes=60)
    assert (messages["tasks"], messages["state"]) == (2, "PAUSED")
    assert messages["found"] >= 600 > BACKLOG_LATE_SECONDS == messages["threshold"]
    assert queues["webhooks"]["tasks"] == queues["default"]["tasks"] == 0
    [line] = [line for line in lines if "backlog-messages" in line]
    assert line.startswith("BREACHED") and "PAUSED, 2 queued" in line


async def test_queue_stats_count_tasks_running_and_run_in_the_last_minute(
    make_settings: Callable[..., Settings],
    emulator: TasksEmulator,  # noqa: F811
) -> None:
    """While the worker is still answering a task, its queue counts it as queued and being
    dispatched; once answered, the task is gone and counted as run in the last minute."""
    answer = asyncio.Event()

    async def slow(request: Request) -> Response:
        await answer.wait()
        return Response(status_code=204)

    port = free_port()
    stop = await start_in_loop(
        Starlette(routes=[Route("/{path:path}", slow, methods=["POST"])]), port
    )
    settings = tasks_settings(make_settings, emulator)
    config = queue_config(settings)
    queue = TaskQueue(dataclasses.replace(config, worker_url=f"http://127.0.0.1:{port}"))
    try:
        await queue.enqueue(WHATSAPP_SEND, "send-slow", {})

        async def stats() -> QueueBacklog:
            backlog = await read_backlog(config.project, config.location, emulator.host)
            seen = backlog["messages"]
            assert isinstance(seen, QueueBacklog)
            return seen

        running = await eventually(lambda: _when(stats(), lambda s: s.dispatching == 1))
        assert (running.tasks, running.executed_last_minute) == (1, 0)
        answer.set()
        done = await eventually(lambda: _when(stats(), lambda s: s.tasks == 0))
        assert (done.dispatching, done.executed_last_minute, done.oldest_due) == (0, 1, None)
    finally:
        await queue.close()
        await stop()


async def _when(reading: Any, ready: Callable[[QueueBacklog], bool]) -> QueueBacklog | None:
    seen: QueueBacklog = await reading
    return seen if ready(seen) else None


# ---- ops db ------------------------------------------------------------------------------


async def test_ops_db_shows_a_long_transaction_and_who_blocks_whom(
    db_url: str, conn: asyncpg.Connection
) -> None:
    """A worker connection holds a night's row in an open transaction and a second one waits
    to update it. `ops db --longer-than 0` lists the holder as a transaction idle in it and
    the waiter as blocked by it on ari_days (a Lock wait), counts the connections by
    application, and exits 1; never a statement's text. Once both end, `ops db` (60 s) finds
    nothing and exits 0, with each role's pool from deploy/cloudrun."""
    cal = await make_calendar(conn, [("std", 2, 3, 30000)], days=5)
    room = cal.room_type_ids["std"]
    touch = "UPDATE ari_days SET rate_cents = rate_cents WHERE room_type_id = $1 AND date = $2"
    worker = {"application_name": db.application_name("worker")}
    holder = await db.connect(db_url, server_settings=worker)
    waiter = await db.connect(db_url, server_settings=worker)
    env = app_env(DATABASE_URL=db_url)
    try:
        holding = holder.transaction()
        await holding.start()
        await holder.execute(touch, room, cal.start)
        waiting = waiter.transaction()
        await waiting.start()
        blocked = asyncio.create_task(waiter.execute(touch, room, cal.start))

        async def waits() -> bool:
            query = "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1"
            return bool(await conn.fetchval(query, waiter.get_server_pid()))

        await eventually(waits)
        code, lines, found = await _cli(env, "ops", "db", "--longer-than", "0")
        assert code == 1 and {"long_transactions", "lock_waits"} <= set(found["problems"])
        long = {row["pid"]: row for row in found["long_transactions"]}
        assert long[holder.get_server_pid()]["state"] == "idle in transaction"
        assert long[holder.get_server_pid()]["application"] == "hotelly-worker"
        [wait] = found["lock_waits"]
        assert (wait["blocked_pid"], wait["blocking_pid"]) == (
            waiter.get_server_pid(),
            holder.get_server_pid(),
        )
        assert (wait["relation"], wait["wait_event_type"]) == ("ari_days", "Lock")
        assert wait["blocking_state"] == "idle in transaction"
        apps = {
            (row["application"], row["state"]): row["connections"] for row in found["connections"]
        }
        assert apps[("hotelly-worker", "idle in transaction")] == 1
        assert apps[("hotelly-worker", "active")] == 1
        assert apps[("hotelly-cli", "active")] == 1  # ops db itself
        text = "\n".join(lines) + orjson.dumps(found).decode()
        assert "UPDATE" not in text and "rate_cents" not in text
        assert any("waits" in line and "ari_days" in line for line in lines), lines

        await holding.rollback()
        await blocked
        await waiting.rollback()
    finally:
        await holder.close()
        await waiter.close()

    code, lines, found = await _cli(env, "ops", "db")
    assert (code, found["problems"]) == (0, []), lines
    assert found["long_transactions"] == found["lock_waits"] == []
    pools = {pool["role"]: pool for pool in found["pools"]}
    assert set(pools) == {"public", "worker"}
    assert all(
        pool["connections"] == pool["pool_max"] * pool["max_instances"] for pool in pools.values()
    )
    assert found["max_connections"] > sum(pool["connections"] for pool in pools.values())


def test_pools_are_read_from_the_deploy_files_or_said_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each service's pool is its file's DB_POOL_MAX times its maxScale; where the deploy
    code is missing (the production image) `ops db` says the pools are unavailable, and why,
    instead of failing."""
    pools = declared_pools()
    assert not isinstance(pools, str)
    assert [(p.service, p.role, p.pool_max, p.max_instances) for p in pools] == [
        ("hotelly-worker", "worker", 10, 4),
        ("hotelly-public", "public", 10, 4),
    ]
    with pytest.raises(FileNotFoundError):
        read_pools(tmp_path)
    monkeypatch.setitem(sys.modules, "app.deploy.pools", None)
    reason = declared_pools()
    assert isinstance(reason, str) and "checkout" in reason


async def test_each_serving_role_names_its_connections(
    conn: asyncpg.Connection, make_settings: Callable[..., Settings]
) -> None:
    """A served role's pool connects as hotelly-<role>, so `ops db` tells the roles apart."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
    for role in ("public", "worker"):
        async with serve_app(make_settings(role)):
            assert await conn.fetchval(query, f"hotelly-{role}") >= 1
