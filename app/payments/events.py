"""The worker's side of a Stripe event: from its receipt to the inventory transaction.

Each step is its own transaction ending in a known state; a retry of the task
re-runs the steps and each one is a no-op the second time (convert_hold decides a
payment once, the receipt keeps its first outcome, the refund carries a Stripe
idempotency key). Charge and dispute events (refunds, chargebacks) name a payment intent,
not a hold: they go to ``app.payments.refunds`` and ``app.payments.disputes``.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import asyncpg
import stripe

from app.db import QUERIES
from app.errors import Unavailable
from app.inventory.holds import cancel_hold, convert_hold
from app.logging import annotate_request
from app.payments.disputes import record_dispute
from app.payments.refunds import record_charge_refunded
from app.settings import Settings

log = logging.getLogger("app.payments")

NEEDS_REFUND = frozenset({"late", "duplicate", "mismatch"})
DISPUTE_EVENTS = frozenset({"charge.dispute.created", "charge.dispute.closed"})


def _hold_id(details: dict[str, Any]) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(details.get("hold_id")))
    except ValueError:
        return None


async def process_stripe_event(
    pool: asyncpg.Pool, client: stripe.StripeClient, settings: Settings, event_id: str
) -> str:
    """Apply one received Stripe event; returns its outcome (recorded on the receipt)."""
    async with pool.acquire() as conn:
        receipt = await conn.fetchrow(QUERIES["receipt_for_task"], "stripe", event_id)
    if receipt is None:
        return "unknown_event"
    if receipt["processed_at"] is not None:
        return str(receipt["outcome"])
    details: dict[str, Any] = receipt["details"]
    event_type = receipt["event_type"]
    hold_id = _hold_id(details)
    annotate_request(event_id=event_id, hold_id=str(hold_id) if hold_id else None)
    if event_type == "charge.refunded":
        outcome = await record_charge_refunded(pool, client, details)
    elif event_type in DISPUTE_EVENTS:
        outcome = await record_dispute(pool, event_type, details)
    elif hold_id is None or "object_id" not in details:
        outcome = "not_applicable"
    else:
        outcome = await _apply(pool, client, settings, event_type, details, hold_id)
    async with pool.acquire() as conn:
        await conn.execute(QUERIES["finish_receipt"], "stripe", event_id, outcome)
    log.info("stripe_event_processed", extra={"event_id": event_id, "outcome": outcome})
    return outcome


async def _apply(
    pool: asyncpg.Pool,
    client: stripe.StripeClient,
    settings: Settings,
    event_type: str,
    details: dict[str, Any],
    hold_id: uuid.UUID,
) -> str:
    session_id = details["object_id"]
    amount = details.get("amount_total")
    currency = details.get("currency")
    paid = event_type == "checkout.session.async_payment_succeeded" or (
        event_type == "checkout.session.completed" and details.get("payment_status") == "paid"
    )
    async with pool.acquire() as conn:
        if not await conn.fetchval(QUERIES["hold_exists"], hold_id):
            return "unknown_hold"  # not ours (e.g. a shared test account): never retry
        if paid:
            if not isinstance(amount, int) or not isinstance(currency, str):
                return "not_applicable"
            result = await convert_hold(
                conn,
                hold_id,
                provider_object_id=session_id,
                amount_cents=amount,
                currency=currency,
                payment_intent=details.get("payment_intent"),
            )
            annotate_request(payment_id=str(result.payment_id))
            if settings.auto_refund_late_payments:
                await refund_if_needed(conn, client, result.payment_id)
            if result.outcome == "already_processed":
                # A retry after the decision committed: record the decision itself.
                decided = await conn.fetchval(QUERIES["payment_decision"], result.payment_id)
                return str(decided or result.outcome)
            return result.outcome
        if event_type == "checkout.session.completed":
            await conn.execute(QUERIES["payment_pending"], session_id, hold_id, amount, currency)
            return "pending"
        if event_type == "checkout.session.async_payment_failed":
            await conn.execute(QUERIES["payment_failed"], session_id, hold_id, amount, currency)
            released = await cancel_hold(conn, hold_id, "payment_failed")
            return "payment_failed" if released else "payment_failed_hold_closed"
        if event_type == "checkout.session.expired":
            latest = await conn.fetchval(QUERIES["payment_session_for_hold"], hold_id)
            if latest is not None and latest != session_id:
                return "session_superseded"  # a new link was sent: the hold lives on
            released = await cancel_hold(conn, hold_id, "checkout_expired")
            return "hold_cancelled" if released else "hold_already_closed"
    return "not_applicable"


async def refund_if_needed(
    conn: asyncpg.Connection, client: stripe.StripeClient, payment_id: uuid.UUID
) -> bool:
    """Refund a needs_refund payment exactly once (Stripe dedupes on the idempotency key)."""
    payment = await conn.fetchrow(QUERIES["payment_to_refund"], payment_id)
    if payment is None or not payment["payment_intent"]:
        return False
    try:
        refund = await client.v1.refunds.create_async(
            # metadata.payment_id: its charge.refunded knows the refund as ours.
            params={
                "payment_intent": payment["payment_intent"],
                "metadata": {"payment_id": str(payment_id)},
            },
            options={"idempotency_key": f"refund-{payment_id}"},
        )
    except stripe.StripeError as exc:
        raise Unavailable(f"Stripe refund failed: {type(exc).__name__}") from None
    await conn.execute(QUERIES["payment_refunded"], payment_id, refund.id, refund.amount)
    log.info("payment_refunded", extra={"payment_id": str(payment_id)})
    return True
