"""Refunds through Stripe: our own, and the ones Stripe tells us about.

**Ours.** A cancel writes a pending ``refunds`` row and, in the same transaction, the
outbox fact ``refund.requested``, whose task runs ``send_refund``:

1. read the row (no transaction): only a pending row with no Stripe id is sent;
2. call Stripe, with no transaction open: ``refunds.create`` with the row's idempotency
   key and ``metadata.refund_id`` = the row's id, so a retried or duplicated task makes
   exactly one refund (Stripe answers a repeated key with the first refund);
3. one transaction (payment locked, then the refund): record Stripe's id and status on the
   row unless an answer is already there — the refund's own ``charge.refunded`` may have
   arrived first and recorded it — and raise ``payments.refunded_cents`` to the sum of the
   payment's succeeded refunds.

A Stripe error that a retry may cure is Unavailable (the task answers 503 and Cloud Tasks
retries it); a refund Stripe refuses for good (400: more than is left, a disputed charge)
fails the row and tells the staff.

**Stripe's.** ``charge.refunded`` names the charge and its payment intent, not its
refunds (since API version 2022-11-15 a Charge no longer embeds them), so
``record_charge_refunded`` lists the intent's refunds and, in one transaction with the
payment locked, classifies each: its metadata names one of our rows → recorded on that
row; it is the automatic refund of a late payment (``payments.refund_id``, or our
metadata.payment_id) → ours, skipped; anything else was made outside (Stripe's dashboard)
→ a ``stripe_dashboard`` row, inserted once by its Stripe id, and, when the payment's
reservation is live, one ``payment.refunded_outside`` fact for the staff. The reservation
stays as it is: only the inn cancels. ``refunded_cents`` never goes down.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

import asyncpg
import stripe

from app.db import QUERIES
from app.errors import Unavailable
from app.logging import annotate_request, correlation_id
from app.tasks import outbox

log = logging.getLogger("app.payments.refunds")

# Stripe keeps an idempotency key for at least 24 hours. A row older than this may have
# outlived its key (a task retried for a day), so it is first looked for at Stripe by its
# metadata: a second create could otherwise make a second refund.
IDEMPOTENCY_WINDOW = dt.timedelta(hours=23)
# One page of a payment intent's refunds; more are paged through (a payment has a few).
LIST_LIMIT = 100
# Stripe's refund statuses as ours; anything else (pending, requires_action) is pending.
_STATUSES = {"succeeded": "succeeded", "failed": "failed", "canceled": "failed"}


def our_status(stripe_status: object) -> str:
    return _STATUSES.get(stripe_status, "pending") if isinstance(stripe_status, str) else "pending"


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


async def send_refund(pool: asyncpg.Pool, client: stripe.StripeClient, refund_id: uuid.UUID) -> str:
    """Make our pending refund at Stripe, once; returns the task's outcome."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(QUERIES["refund_to_send"], refund_id)
    if row is None:
        return "unknown_refund"
    annotate_request(
        refund_id=str(refund_id),
        payment_id=str(row["payment_id"]),
        reservation_id=str(row["reservation_id"]) if row["reservation_id"] else None,
    )
    if row["status"] == "succeeded":
        return "already_refunded"
    if row["status"] != "pending":
        return f"already_{row['status']}"
    if row["stripe_refund_id"] is not None:
        return "refund_pending"  # Stripe has it; its webhook or a later look decides it
    if row["provider"] != "stripe" or not row["payment_intent"]:
        log.warning("refund_not_sendable", extra={"refund_id": str(refund_id)})
        return "not_sendable"
    intent = row["payment_intent"]
    found = None
    if dt.datetime.now(dt.UTC) - row["created_at"] > IDEMPOTENCY_WINDOW:
        found = await _find_ours(client, intent, refund_id)
    if found is None:
        try:
            made = await client.v1.refunds.create_async(
                params={
                    "payment_intent": intent,
                    "amount": row["amount_cents"],
                    "metadata": {"refund_id": str(refund_id)},
                },
                options={"idempotency_key": row["idempotency_key"]},
            )
        except stripe.InvalidRequestError as exc:  # a 400/404: no retry will change it
            return await _refused(pool, row, exc.code or "invalid_request")
        except stripe.StripeError as exc:
            raise Unavailable(f"Stripe refund failed: {type(exc).__name__}") from None
        found = (made.id, made.status)
    stripe_id, status = found[0], our_status(found[1])
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(QUERIES["refund_lock_payment"], row["payment_id"])
        recorded = await conn.execute(QUERIES["refund_record"], refund_id, stripe_id, status)
        await conn.execute(QUERIES["refund_payment_cents"], row["payment_id"], 0)
        if status == "failed" and recorded == "UPDATE 1":
            outbox.written([await _failed_fact(conn, row, "failed")])
    log.info(
        "refund_sent",
        extra={"refund_id": str(refund_id), "stripe_refund_id": stripe_id, "status": status},
    )
    return "refunded" if status == "succeeded" else f"refund_{status}"


async def _find_ours(
    client: stripe.StripeClient, intent: str, refund_id: uuid.UUID
) -> tuple[str, str | None] | None:
    for refund in await list_refunds(client, intent):
        metadata = refund.get("metadata") or {}
        if metadata.get("refund_id") == str(refund_id):
            return str(refund["id"]), refund.get("status")
    return None


async def list_refunds(client: stripe.StripeClient, intent: str) -> list[dict[str, Any]]:
    """Every refund of a payment intent, as plain dicts (Unavailable when Stripe fails)."""
    try:
        page = await client.v1.refunds.list_async(
            params={"payment_intent": intent, "limit": LIST_LIMIT}
        )
        return [refund.to_dict() async for refund in page.auto_paging_iter()]
    except stripe.StripeError as exc:
        raise Unavailable(f"Stripe refund list failed: {type(exc).__name__}") from None


async def _refused(pool: asyncpg.Pool, row: asyncpg.Record, why: str) -> str:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(QUERIES["refund_lock_payment"], row["payment_id"])
        if await conn.fetchval(QUERIES["refund_refused"], row["id"]) is not None:
            outbox.written([await _failed_fact(conn, row, why)])
    log.warning("refund_refused", extra={"refund_id": str(row["id"]), "stripe_code": why})
    return "refund_refused"


async def _failed_fact(conn: asyncpg.Connection, row: asyncpg.Record, why: str) -> int:
    payload = {
        "refund_id": str(row["id"]),
        "payment_id": str(row["payment_id"]),
        "property_id": row["property_id"],
        "reservation_id": str(row["reservation_id"]) if row["reservation_id"] else None,
        "code": row["reservation_code"],
        "amount_cents": row["amount_cents"],
        "currency": row["currency"],
        "why": why[:64],
    }
    return int(
        await conn.fetchval(
            QUERIES["refund_outbox"],
            "refund.failed",
            "refund",
            str(row["id"]),
            payload,
            correlation_id.get(),
        )
    )


async def record_charge_refunded(
    pool: asyncpg.Pool, client: stripe.StripeClient, details: dict[str, Any]
) -> str:
    """Apply a charge.refunded event: each refund of the charge's payment intent recorded
    as ours or as made outside; returns the event's outcome."""
    intent = details.get("payment_intent")
    if not isinstance(intent, str):
        return "not_applicable"
    async with pool.acquire() as conn:
        known = await conn.fetchval(QUERIES["stripe_payment_known"], intent)
    if not known:
        return "unknown_payment"  # not ours (e.g. a shared test account): never retry
    listed = await list_refunds(client, intent)  # no transaction is open across the call
    charged = details.get("amount_refunded")
    stripe_cents = charged if isinstance(charged, int) and not isinstance(charged, bool) else 0
    facts: list[int] = []
    async with pool.acquire() as conn, conn.transaction():
        payment = await conn.fetchrow(QUERIES["stripe_payment_of_intent"], intent)
        if payment is None:
            return "unknown_payment"
        annotate_request(payment_id=str(payment["id"]))
        for refund in listed:
            fact = await _classify(conn, payment, refund)
            if fact is not None:
                facts.append(fact)
        await conn.execute(QUERIES["refund_payment_cents"], payment["id"], stripe_cents)
    outbox.written(facts)
    return "refunded_outside" if facts else "refunds_recorded"


async def _classify(
    conn: asyncpg.Connection, payment: asyncpg.Record, refund: dict[str, Any]
) -> int | None:
    """Record one listed refund; the id of the staff's fact when it is a new outside one."""
    stripe_id, amount = refund.get("id"), refund.get("amount")
    if not isinstance(stripe_id, str) or not isinstance(amount, int) or amount <= 0:
        return None
    status = our_status(refund.get("status"))
    metadata = refund.get("metadata") or {}
    ours = _uuid(metadata.get("refund_id"))
    if ours is not None and await conn.fetchval(
        QUERIES["refund_mark_ours"], ours, payment["id"], stripe_id, status
    ):
        return None
    if stripe_id == payment["refund_id"] or metadata.get("payment_id") == str(payment["id"]):
        return None  # the automatic refund of a payment that booked nothing
    new = await conn.fetchval(
        QUERIES["refund_record_outside"],
        payment["id"],
        payment["reservation_id"],
        amount,
        status,
        stripe_id,
    )
    if new is None:
        await conn.execute(QUERIES["refund_outside_status"], stripe_id, status)
        return None
    log.info(
        "refund_outside_recorded", extra={"refund_id": str(new), "stripe_refund_id": stripe_id}
    )
    if payment["reservation_status"] != "confirmed":
        return None
    payload = {
        "refund_id": str(new),
        "payment_id": str(payment["id"]),
        "property_id": payment["property_id"],
        "reservation_id": str(payment["reservation_id"]),
        "code": payment["reservation_code"],
        "amount_cents": amount,
        "currency": payment["currency"],
    }
    return int(
        await conn.fetchval(
            QUERIES["refund_outbox"],
            "payment.refunded_outside",
            "payment",
            str(payment["id"]),
            payload,
            correlation_id.get(),
        )
    )
