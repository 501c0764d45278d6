"""Durable receipts of provider events: record, enqueue, acknowledge — in that order.

A webhook answers 2xx only after ``accept`` returns: the receipt is committed and its
task exists. If the enqueue fails, ``accept`` raises Unavailable (503) and the
receipt stays, so the provider's retry finds it and enqueues again (the task name is
deterministic, so ALREADY_EXISTS on that retry counts as success).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from app.db import QUERIES
from app.logging import annotate_request
from app.tasks.enqueued_marks import EnqueuedMarks
from app.tasks.queue import TaskQueue


@dataclass(frozen=True)
class Incoming:
    source: str
    external_id: str
    event_type: str
    details: dict[str, Any]
    task_name: str
    queue: str
    path: str
    ignored: bool = False


async def accept(
    pool: asyncpg.Pool, queue: TaskQueue, marks: EnqueuedMarks, event: Incoming
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
            event.task_name,
            event.ignored,
        )
        if row is None:  # a duplicate delivery
            row = await conn.fetchrow(QUERIES["receipt_state"], event.source, event.external_id)
            duplicate = True
        else:
            duplicate = False
    assert row is not None
    if row["outcome"] == "ignored":
        annotate_request(outcome="ignored")
        return "ignored"
    if row["enqueued_at"] is not None:
        annotate_request(outcome="duplicate")
        return "duplicate"
    await queue.enqueue(
        event.queue,
        event.task_name,
        event.path,
        {"source": event.source, "event_id": event.external_id},
    )
    await marks.mark(event.source, event.external_id)
    outcome = "re-enqueued" if duplicate else "enqueued"
    annotate_request(outcome=outcome, task_name=event.task_name)
    return outcome
