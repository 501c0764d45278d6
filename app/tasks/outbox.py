"""The transactional outbox relay: outbox rows become Cloud Tasks after commit.

Rows are written in the same transaction as the state change. Whoever committed
calls ``relay`` right after, and a scheduled relay task calls it again, so a crash
between commit and enqueue loses nothing. No lock is held across the enqueue:
task names are deterministic, so two relays racing on one row create one task.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg

from app.db import QUERIES
from app.tasks.queue import TaskQueue, task_name

log = logging.getLogger("app.tasks.outbox")

RELAY_BATCH = 100


@dataclass(frozen=True)
class Delivery:
    queue: str
    name: str
    path: str
    body: dict[str, Any]
    schedule_at: dt.datetime | None = None


# Facts the guest hears about, when the hold came from a WhatsApp conversation.
GUEST_NOTICES = frozenset({"reservation.confirmed", "hold.expired", "hold.cancelled"})
# Facts the inn's staff hear about on their WhatsApp numbers.
STAFF_NOTICES = frozenset(
    {
        "reservation.confirmed",
        "payment.late",
        "payment.duplicate",
        "payment.mismatch",
        "conversation.handoff",
        "reservation.cancel_requested",
    }
)


def route(outbox_id: int, event_type: str, payload: dict[str, Any]) -> list[Delivery]:
    """The tasks an outbox event triggers (none for most)."""
    deliveries = []
    if event_type == "message.queued":
        deliveries.append(
            Delivery(
                queue="messages",
                name=f"send-{payload['message_id']}",
                path="/tasks/whatsapp/send",
                body={"message_id": payload["message_id"]},
            )
        )
    if event_type in GUEST_NOTICES and payload.get("conversation_id"):
        deliveries.append(
            Delivery(
                queue="messages",
                # A hold has each of these facts at most once; outbox ids are sequential.
                name=task_name("notify", f"{payload['hold_id']}:{event_type}"),
                path="/tasks/conversations/notify",
                body={"outbox_id": outbox_id},
            )
        )
    if event_type in STAFF_NOTICES:
        deliveries.append(
            Delivery(
                queue="messages",
                name=f"staff-{hashlib.sha256(str(outbox_id).encode()).hexdigest()[:32]}",
                path="/tasks/staff/notify",
                body={"outbox_id": outbox_id},
            )
        )
    if event_type == "hold.created":
        deliveries.append(
            Delivery(
                queue="holds",
                name=f"expire-{payload['hold_id']}",
                path="/tasks/holds/expire",
                body={"hold_id": payload["hold_id"]},
                schedule_at=dt.datetime.fromisoformat(payload["expires_at"]),
            )
        )
    return deliveries


async def relay(pool: asyncpg.Pool, queue: TaskQueue, limit: int = RELAY_BATCH) -> int:
    """Enqueue the tasks of pending outbox rows; returns how many rows were settled."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(QUERIES["outbox_pending"], limit)
    settled = []
    for row in rows:
        for delivery in route(row["id"], row["event_type"], row["payload"]):
            await queue.enqueue(
                delivery.queue, delivery.name, delivery.path, delivery.body, delivery.schedule_at
            )
        settled.append(row["id"])
    if settled:
        async with pool.acquire() as conn:
            await conn.execute(QUERIES["outbox_mark_enqueued"], settled)
    return len(settled)
