"""Giving money back: the refund row and, in the caller's transaction, the task that has
Stripe make it. A cancel's refund and an operator's refund of a payment that booked
nothing (``ops refund``) are made here alike; app/payments/refunds.py sends them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

import asyncpg

from app.db import QUERIES
from app.logging import correlation_id
from app.tasks import outbox

Reason = Literal["cancellation", "needs_refund"]


@dataclass(frozen=True)
class Refund:
    payment_id: uuid.UUID
    property_id: int
    provider: str  # the payment's: 'offline' is given back at the desk
    amount_cents: int
    reason: Reason
    reservation_id: uuid.UUID | None = None


async def request_refund(conn: asyncpg.Connection, refund: Refund) -> asyncpg.Record:
    """Write the refund (its id and status) inside the caller's transaction, with the
    payment locked by the caller. A Stripe payment's refund is pending, and its
    ``refund.requested`` fact makes its REFUND_SEND task once committed; a payment made at
    the desk is refunded there at once (``offline``, no task)."""
    row = await conn.fetchrow(
        QUERIES["insert_refund"],
        refund.payment_id,
        refund.reservation_id,
        refund.amount_cents,
        refund.provider,
        refund.reason,
    )
    if row["status"] == "pending":
        payload = {
            "refund_id": str(row["id"]),
            "payment_id": str(refund.payment_id),
            "property_id": refund.property_id,
            "reservation_id": str(refund.reservation_id) if refund.reservation_id else None,
        }
        fact = await conn.fetchval(
            QUERIES["insert_outbox"],
            "refund.requested",
            "refund",
            str(row["id"]),
            payload,
            correlation_id.get(),
        )
        outbox.written([fact])
    return row
