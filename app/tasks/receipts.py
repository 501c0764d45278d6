"""Durable receipts of provider events: record, enqueue, acknowledge — in that order; and
the re-drive of receipts whose task was lost.

A webhook answers 2xx only after ``accept`` returns: the receipt is committed and its
task exists. If the enqueue fails, ``accept`` raises Unavailable (503) and the
receipt stays, so the provider's retry finds it and enqueues again (the task name is
deterministic, so ALREADY_EXISTS on that retry counts as success).

A task can still be lost after its receipt was marked enqueued (a queue purged, an
emulator restarted). A receipt not processed ``RECEIPT_REDRIVE_SECONDS`` after it was
enqueued is re-driven — by the scheduled re-drive task, or by the provider's own
redelivery — but only when Cloud Tasks answers NotFound for its current task: one waiting
in retry backoff is not lost. The new task takes the next generation of the name (Cloud
Tasks refuses a name for about an hour after its task ran), at most MAX_GENERATIONS times;
beyond that the receipt waits for an operator (``ops stale-receipts``, ``ops reprocess``).
Every task of a receipt carries the receipt's correlation id.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

import asyncpg

from app.db import QUERIES
from app.logging import annotate_request, correlation_id
from app.tasks.catalog import RECEIPT_TASKS, TaskKind
from app.tasks.enqueued_marks import EnqueuedMarks
from app.tasks.queue import TaskQueue

log = logging.getLogger("app.tasks.receipts")

# Re-drives of one receipt before it is left to an operator: a task lost five times over
# is a fault to look at, not to paper over.
MAX_GENERATIONS = 5


@dataclass(frozen=True)
class Incoming:
    source: str
    external_id: str
    event_type: str
    details: dict[str, Any]
    kind: TaskKind
    ignored: bool = False
    # The story this event continues (a Checkout Session's metadata), else the request's.
    correlation: str | None = None


@dataclass(frozen=True)
class Receipt:
    """A receipt whose task may need enqueuing again."""

    source: str
    external_id: str
    task_name: str
    generation: int
    correlation_id: str | None
    enqueued: bool  # False: never enqueued (the webhook answered 5xx, the provider gave up)

    @classmethod
    def of(cls, row: asyncpg.Record) -> Receipt:
        return cls(
            row["source"],
            row["external_id"],
            row["task_name"],
            row["reprocess_generation"],
            row["correlation_id"],
            row["enqueued_at"] is not None,
        )


async def accept(
    pool: asyncpg.Pool,
    queue: TaskQueue,
    marks: EnqueuedMarks,
    event: Incoming,
    redrive_after_seconds: int,
) -> str:
    """Record the event and make sure its task exists. Returns what happened."""
    annotate_request(event_id=event.external_id, event_type=event.event_type)
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            QUERIES["insert_receipt"],
            event.source,
            event.external_id,
            event.event_type,
            event.details,
            event.kind.task_name(event.external_id),
            event.ignored,
            event.correlation or correlation_id.get(),
        )
        duplicate = row is None
        if row is None:  # a redelivery
            row = await conn.fetchrow(
                QUERIES["receipt_state"], event.source, event.external_id, redrive_after_seconds
            )
    assert row is not None
    if row["outcome"] == "ignored":
        annotate_request(outcome="ignored")
        return "ignored"
    if row["processed_at"] is not None or (row["enqueued_at"] is not None and not row["stale"]):
        annotate_request(outcome="duplicate")
        return "duplicate"
    if row["enqueued_at"] is not None:  # enqueued long ago, never finished: lost?
        outcome, _ = await redrive(pool, queue, Receipt.of(row))
        annotate_request(outcome=f"redrive_{outcome}")
        return "re-enqueued" if outcome == "redriven" else "duplicate"
    await queue.enqueue(
        event.kind,
        row["task_name"],
        {"source": event.source, "event_id": event.external_id},
        correlation=row["correlation_id"],
    )
    await marks.mark(event.source, event.external_id)
    outcome = "re-enqueued" if duplicate else "enqueued"
    annotate_request(outcome=outcome, task_name=row["task_name"])
    return outcome


async def redrive(
    pool: asyncpg.Pool, queue: TaskQueue, receipt: Receipt, *, force: bool = False
) -> tuple[str, str]:
    """Enqueue the receipt's task again if it was lost. Returns the outcome — ``alive``
    (its task is still queued), ``redriven``, ``exhausted`` (MAX_GENERATIONS reached) or
    ``finished`` (processed, or re-driven by someone else, meanwhile) — and the task's name.
    ``force`` (an operator's reprocess) skips the look-up and the generation cap."""
    kind = RECEIPT_TASKS[receipt.source]
    name = receipt.task_name
    if receipt.enqueued:
        if not force and await queue.exists(kind, name):
            return "alive", name
        generation = receipt.generation + 1
        if not force and generation > MAX_GENERATIONS:
            log.error("receipt_redrive_exhausted", extra={"event_id": receipt.external_id})
            return "exhausted", name
        name = kind.task_name(receipt.external_id, generation)
        async with pool.acquire() as conn:
            claimed = await conn.fetchval(
                QUERIES["redrive_receipt"], receipt.source, receipt.external_id, generation, name
            )
        if not claimed:
            return "finished", name
    await queue.enqueue(
        kind,
        name,
        {"source": receipt.source, "event_id": receipt.external_id},
        correlation=receipt.correlation_id,
    )
    if not receipt.enqueued:
        async with pool.acquire() as conn:
            await conn.execute(
                QUERIES["mark_receipts_enqueued"], [receipt.source], [receipt.external_id]
            )
    log.warning("receipt_redriven", extra={"event_id": receipt.external_id, "task_name": name})
    return "redriven", name


async def redrive_stale(
    pool: asyncpg.Pool, queue: TaskQueue, after_seconds: int, limit: int
) -> dict[str, int]:
    """The scheduled re-drive: every receipt unfinished ``after_seconds`` after it was
    enqueued (or received, if it never was), up to ``limit``. Counts per outcome."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(QUERIES["stale_receipts"], after_seconds, limit)
    outcomes: Counter[str] = Counter()
    for row in rows:
        outcome, _ = await redrive(pool, queue, Receipt.of(row))
        outcomes[outcome] += 1
    return dict(outcomes)
