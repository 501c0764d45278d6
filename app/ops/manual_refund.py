"""Refund by hand a payment that booked nothing (``needs_refund``: paid after expiry,
twice, or the wrong amount), runbook "Payment without reservation".

A back-office command on the payment's inn: previewed unless applied, applied in one
transaction with its audit row (app/backoffice/runner.py), the refund written as a
cancel's is (app/backoffice/refunds.py) and sent by its task (app/payments/refunds.py),
once, with the row's idempotency key. When Stripe's refund succeeds the payment becomes
``refunded`` and leaves the queue. Idempotent: while a refund of it is pending or done, a
second run changes nothing; a refund Stripe refused may be asked for again.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from app.backoffice.refunds import Refund, request_refund
from app.backoffice.runner import run, scope_of
from app.db import QUERIES
from app.errors import Conflict, NotFound

COMMAND = "payment.refund"


class NotRefundable(Conflict):
    """Only a needs_refund payment is refunded by hand."""

    code = "not_needs_refund"


async def refund_payment(
    conn: asyncpg.Connection, payment_id: uuid.UUID, actor: str, *, execute: bool = False
) -> dict[str, Any]:
    """Preview, or request the refund of what is left of ``payment_id``."""
    found = await conn.fetchrow(QUERIES["payment_to_refund_by_hand"], payment_id)
    if found is None:
        raise NotFound(f"no payment {payment_id}")
    scope = await scope_of(conn, found["property_code"], actor)
    shown = {"payment_id": str(payment_id), "hold_id": str(found["hold_id"])}

    async def plan(conn: asyncpg.Connection) -> dict[str, Any]:
        await conn.execute(QUERIES["refund_lock_payment"], payment_id)
        row = await conn.fetchrow(QUERIES["payment_to_refund_by_hand"], payment_id)
        left = (row["amount_cents"] or 0) - row["refunded_cents"]
        if row["status"] == "refunded" or (row["status"] == "needs_refund" and left <= 0):
            return {**shown, "outcome": "already_refunded"}
        if row["status"] != "needs_refund":
            raise NotRefundable(f"payment {payment_id} is {row['status']}, not needs_refund")
        if row["refund_id"] is not None:
            return {
                **shown,
                "outcome": "already_requested",
                "refund_id": str(row["refund_id"]),
                "refund_status": row["refund_status"],
            }
        return {
            **shown,
            "refund_cents": left,
            "currency": row["currency"],
            "refund_via": row["provider"],
        }

    async def apply(conn: asyncpg.Connection, effect: dict[str, Any]) -> dict[str, Any]:
        if "outcome" in effect:
            return effect
        refund = await request_refund(
            conn,
            Refund(
                payment_id,
                scope.property.id,
                effect["refund_via"],
                effect["refund_cents"],
                "needs_refund",
            ),
        )
        # Given back at the desk, a payment is refunded at once: let it leave the queue now.
        await conn.execute(QUERIES["refund_payment_cents"], payment_id, 0)
        return {
            **effect,
            "outcome": "refund_requested",
            "refund_id": str(refund["id"]),
            "refund_status": refund["status"],
        }

    return await run(
        conn, scope, COMMAND, {"payment_id": str(payment_id)}, plan, apply, execute=execute
    )
