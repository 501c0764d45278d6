"""Disputes (chargebacks), as Stripe reports them: ``charge.dispute.created`` and
``charge.dispute.closed``.

One transaction per event, the payment locked: ``payments.dispute_status`` becomes the
dispute's status, and the staff are told once when a dispute opens (the status was NULL)
and once when it closes (the status was not closed yet). Events may arrive out of order:
a closed status is never replaced by an open one. The reservation is left as it is.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from app.db import QUERIES
from app.logging import annotate_request, correlation_id
from app.tasks import outbox

log = logging.getLogger("app.payments.disputes")

# Stripe's statuses of a dispute that is over.
CLOSED = frozenset({"won", "lost", "warning_closed", "prevented"})
CREATED, CLOSED_EVENT = "charge.dispute.created", "charge.dispute.closed"


async def record_dispute(pool: asyncpg.Pool, event_type: str, details: dict[str, Any]) -> str:
    """Apply a dispute event to its payment; returns the event's outcome."""
    intent, status = details.get("payment_intent"), details.get("status")
    if not isinstance(intent, str) or not isinstance(status, str):
        return "not_applicable"
    async with pool.acquire() as conn, conn.transaction():
        payment = await conn.fetchrow(QUERIES["stripe_payment_of_intent"], intent)
        if payment is None:
            return "unknown_payment"  # not ours: recorded, never retried
        annotate_request(payment_id=str(payment["id"]))
        previous = payment["dispute_status"]
        if previous in CLOSED and status not in CLOSED:
            return "dispute_stale"  # an older event, after the dispute closed
        await conn.execute(QUERIES["dispute_record"], payment["id"], status)
        fact = None
        if event_type == CREATED and previous is None:
            fact = "payment.disputed"
        elif event_type == CLOSED_EVENT and status in CLOSED and previous not in CLOSED:
            fact = "payment.dispute_closed"
        if fact is not None:
            payload = {
                "payment_id": str(payment["id"]),
                "property_id": payment["property_id"],
                "reservation_id": str(payment["reservation_id"])
                if payment["reservation_id"]
                else None,
                "code": payment["reservation_code"],
                "dispute_id": details.get("object_id"),
                "amount_cents": details.get("amount"),
                "currency": details.get("currency") or payment["currency"],
                "status": status,
                "reason": details.get("dispute_reason"),
            }
            fact_id = await conn.fetchval(
                QUERIES["refund_outbox"],
                fact,
                "payment",
                str(payment["id"]),
                payload,
                correlation_id.get(),
            )
    if fact is not None:
        outbox.written([fact_id])
    log.info("dispute_recorded", extra={"payment_id": str(payment["id"]), "status": status})
    return "dispute_closed" if event_type == CLOSED_EVENT else "dispute_recorded"
