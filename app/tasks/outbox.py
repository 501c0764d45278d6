"""The transactional outbox relay: outbox rows become Cloud Tasks after commit.

Rows are written in the same transaction as the state change, and the function that wrote
them notes their ids (``written``). The handler runs inside ``relaying``, which afterwards
enqueues exactly those rows — so a backlog never delays a new guest's link — and never
turns the handler's committed work into an error: it is best effort. The scheduled relay
task (``relay_due``) takes every row that is due, so a crash between commit and enqueue
loses nothing.

Each row stands alone. A row is leased while it is relayed (two relays never both count
an attempt); a row whose tasks cannot be enqueued — a payload our code cannot route, an
illegal name, a queue that refuses it — gets ``attempts + 1``, ``last_error`` and its next
attempt backed off exponentially, and after MAX_ATTEMPTS it is dead: no longer relayed,
listed by ``ops outbox-dead``, given one more try by ``ops outbox-retry``. No lock is held
across an enqueue: task names are deterministic, so relays meeting on one row make one task.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import asyncpg

from app.db import QUERIES
from app.tasks import catalog
from app.tasks.catalog import TaskKind
from app.tasks.queue import TaskQueue

log = logging.getLogger("app.tasks.outbox")

RELAY_BATCH = 100
# Enqueues in flight at once: enough to drain a backlog quickly without flooding the API.
ENQUEUE_CONCURRENCY = 16
# The longest a batch can take (each enqueue times out after 5 s), so a relay that died
# mid-batch gives its rows back soon after.
LEASE_SECONDS = 60
# Attempts are backed off 5 s, 10 s, 20 s … (at most 1 h between two), so ten of them ride
# out about 85 minutes of trouble before a row is set aside for an operator.
MAX_ATTEMPTS = 10
# The scheduled relay keeps taking full batches for this long (well within the scheduler's
# attempt deadline), then leaves the rest to its next run.
RELAY_BUDGET_SECONDS = 20.0

_written: ContextVar[list[int] | None] = ContextVar("outbox_written", default=None)


@dataclass(frozen=True)
class Delivery:
    kind: TaskKind
    name: str
    body: dict[str, Any]
    schedule_at: dt.datetime | None = None


# Facts the guest hears about, when the hold came from a WhatsApp conversation.
GUEST_NOTICES = frozenset(
    {"reservation.confirmed", "reservation.cancelled", "hold.expired", "hold.cancelled"}
)
# Facts the inn's staff hear about on their WhatsApp numbers.
STAFF_NOTICES = frozenset(
    {
        "reservation.confirmed",
        "reservation.cancelled",
        "payment.late",
        "payment.duplicate",
        "payment.mismatch",
        "conversation.handoff",
        "reservation.cancel_requested",
        "channel.conflict",
        "payment.refunded_outside",
        "payment.disputed",
        "payment.dispute_closed",
        "refund.failed",
    }
)


def route(outbox_id: int, event_type: str, payload: dict[str, Any]) -> list[Delivery]:
    """The tasks an outbox event triggers (none for most)."""
    deliveries = []
    if event_type == "message.queued":
        message_id = str(payload["message_id"])
        deliveries.append(
            Delivery(
                catalog.WHATSAPP_SEND,
                catalog.WHATSAPP_SEND.task_name(message_id),
                {"message_id": message_id},
            )
        )
    if event_type in GUEST_NOTICES and payload.get("conversation_id"):
        kind = catalog.CONVERSATION_NOTIFY
        name = kind.task_name(f"{payload['hold_id']}:{event_type}")
        deliveries.append(Delivery(kind, name, {"outbox_id": outbox_id}))
    if event_type in STAFF_NOTICES:
        kind = catalog.STAFF_NOTIFY
        deliveries.append(Delivery(kind, kind.task_name(str(outbox_id)), {"outbox_id": outbox_id}))
    if event_type == "refund.requested":
        refund_id = str(payload["refund_id"])
        kind = catalog.REFUND_SEND
        deliveries.append(Delivery(kind, kind.task_name(refund_id), {"refund_id": refund_id}))
    if event_type == "hold.created":
        hold_id = str(payload["hold_id"])
        deliveries.append(
            Delivery(
                catalog.HOLD_EXPIRE,
                catalog.HOLD_EXPIRE.task_name(hold_id),
                {"hold_id": hold_id},
                dt.datetime.fromisoformat(payload["expires_at"]),
            )
        )
    return deliveries


def written(ids: Iterable[int | None]) -> None:
    """Note outbox rows the current handler's transaction wrote: the relay after the
    handler takes them first. (A row whose transaction rolled back is simply not found.)"""
    pending = _written.get()
    if pending is not None:
        pending.extend(i for i in ids if i is not None)


@asynccontextmanager
async def relaying(pool: asyncpg.Pool, queue: TaskQueue) -> AsyncIterator[None]:
    """Run a handler, then relay the outbox rows it wrote — also when it failed after
    committing some. Best effort: a relay failure is logged and left to the scheduled relay."""
    ids: list[int] = []
    token = _written.set(ids)
    try:
        yield
    finally:
        _written.reset(token)
        if ids:
            try:
                await relay_rows(pool, queue, ids)
            except Exception as exc:  # the handler's work is committed: never undo its answer
                log.warning(
                    "outbox_relay_deferred", extra={"rows": len(ids), "error": type(exc).__name__}
                )


async def relay_rows(pool: asyncpg.Pool, queue: TaskQueue, ids: Sequence[int]) -> int:
    """Relay these rows (those still to relay); returns how many were handed over."""
    settled = 0
    for start in range(0, len(ids), RELAY_BATCH):
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                QUERIES["outbox_claim_rows"], list(ids[start : start + RELAY_BATCH]), LEASE_SECONDS
            )
        settled += await _deliver(pool, queue, rows)
    return settled


async def relay_due(
    pool: asyncpg.Pool, queue: TaskQueue, budget_seconds: float = RELAY_BUDGET_SECONDS
) -> int:
    """The scheduled relay: batches of due rows, soonest first, while they come full and
    the budget lasts. Returns how many rows were handed over."""
    deadline = time.monotonic() + budget_seconds
    settled = 0
    while True:
        async with pool.acquire() as conn:
            rows = await conn.fetch(QUERIES["outbox_claim_due"], RELAY_BATCH, LEASE_SECONDS)
        settled += await _deliver(pool, queue, rows)
        if len(rows) < RELAY_BATCH or time.monotonic() > deadline:
            return settled


async def _deliver(pool: asyncpg.Pool, queue: TaskQueue, rows: list[asyncpg.Record]) -> int:
    """Enqueue each claimed row's tasks; record each row's success or failure."""
    if not rows:
        return 0
    gate = asyncio.Semaphore(ENQUEUE_CONCURRENCY)

    async def one(row: asyncpg.Record) -> str | None:
        async with gate:
            try:
                for d in route(row["id"], row["event_type"], row["payload"]):
                    await queue.enqueue(
                        d.kind, d.name, d.body, d.schedule_at, correlation=row["correlation_id"]
                    )
            except Exception as exc:  # this row's problem only; the others go on
                return f"{type(exc).__name__}: {exc}"[:300]
            return None

    errors = await asyncio.gather(*(one(row) for row in rows))
    done = [row["id"] for row, error in zip(rows, errors, strict=True) if error is None]
    failed = [(row["id"], error) for row, error in zip(rows, errors, strict=True) if error]
    async with pool.acquire() as conn:
        if done:
            await conn.execute(QUERIES["outbox_mark_enqueued"], done)
        if failed:
            outcomes = await conn.fetch(
                QUERIES["outbox_mark_failed"],
                [outbox_id for outbox_id, _ in failed],
                [error for _, error in failed],
                MAX_ATTEMPTS,
            )
            for outcome in outcomes:
                log.warning(
                    "outbox_row_dead" if outcome["dead"] else "outbox_row_failed",
                    extra={"outbox_id": outcome["id"], "attempts": outcome["attempts"]},
                )
    return len(done)


async def retry_dead(pool: asyncpg.Pool, queue: TaskQueue, outbox_id: int) -> dict[str, Any]:
    """Give a dead row one more attempt (ops outbox-retry): ``enqueued``, ``failed`` (dead
    again, with its new last_error) or ``not_dead``."""
    async with pool.acquire() as conn:
        revived = await conn.fetchval(QUERIES["outbox_revive"], outbox_id)
    if revived is not None:
        await relay_rows(pool, queue, [outbox_id])
    async with pool.acquire() as conn:
        row = await conn.fetchrow(QUERIES["outbox_row_state"], outbox_id)
    if row is None:
        return {"outbox_id": outbox_id, "outcome": "not_found"}
    if revived is None:
        outcome = "not_dead"
    else:
        outcome = "enqueued" if row["enqueued_at"] is not None else "failed"
    return {
        "outbox_id": outbox_id,
        "outcome": outcome,
        "attempts": row["attempts"],
        "last_error": row["last_error"],
    }
