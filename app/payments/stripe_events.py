"""Verifying Stripe webhook deliveries and keeping only the PII-free fields we need: the
receipt of an event, the same whether the webhook received it or ``ops stripe-backfill``
listed it from Stripe's Events API."""

from __future__ import annotations

import time
from typing import Any

import orjson
import stripe

from app.errors import BadRequest
from app.logging import safe_correlation
from app.tasks import catalog
from app.tasks.receipts import Incoming

# Stripe's own default: a signed delivery older than this is refused (replay guard).
TOLERANCE_SECONDS = 300

HANDLED_TYPES = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
        # Refunds (ours, or made in Stripe's dashboard) and disputes: by payment intent.
        "charge.refunded",
        "charge.dispute.created",
        "charge.dispute.closed",
    }
)


def verify_event(payload: bytes, header: str | None, secret: str) -> dict[str, Any]:
    """The event, if ``header`` is Stripe's valid, current signature of ``payload``.

    The stripe library checks the HMAC and rejects timestamps older than the
    tolerance; it accepts future ones, so we refuse those ourselves.
    """
    if not header:
        raise BadRequest("missing Stripe-Signature")
    try:
        stripe.WebhookSignature.verify_header(payload, header, secret, TOLERANCE_SECONDS)
    except (stripe.SignatureVerificationError, ValueError, UnicodeDecodeError):
        raise BadRequest("invalid Stripe-Signature") from None
    timestamps = [p[2:] for p in header.split(",") if p.startswith("t=")]
    if not timestamps or not timestamps[0].isdigit():
        raise BadRequest("invalid Stripe-Signature")
    if int(timestamps[0]) > time.time() + TOLERANCE_SECONDS:
        raise BadRequest("Stripe-Signature timestamp is in the future")
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise BadRequest("body is not JSON") from None
    if not isinstance(event, dict):
        raise BadRequest("event must be a JSON object")
    for key in ("id", "type"):
        value = event.get(key)
        if not isinstance(value, str) or not value or len(value) > 255 or "\x00" in value:
            raise BadRequest(f"event has no valid {key}")
    return event


def worker_details(event: dict[str, Any]) -> dict[str, Any]:
    """The fields the worker acts on. Never the customer's e-mail, name or address (a
    Charge's billing_details and receipt_email, a Dispute's evidence are never read)."""
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        return {}
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    candidates = {
        "object_id": obj.get("id"),
        "payment_status": obj.get("payment_status"),
        "hold_id": metadata.get("hold_id"),
        "amount_total": obj.get("amount_total"),
        "currency": obj.get("currency"),
        "payment_intent": obj.get("payment_intent"),
        # A Charge's or a Dispute's (charge.refunded, charge.dispute.*).
        "amount": obj.get("amount"),
        "amount_refunded": obj.get("amount_refunded"),
        "status": obj.get("status"),
        "charge": obj.get("charge"),
        "dispute_reason": obj.get("reason") if obj.get("object") == "dispute" else None,
    }
    return {
        key: value
        for key, value in candidates.items()
        if (isinstance(value, str) and len(value) <= 255 and "\x00" not in value)
        or (isinstance(value, int) and not isinstance(value, bool))
    }


def linked_correlation(event: dict[str, Any]) -> str | None:
    """The correlation id our Checkout Session carries in its metadata, if it is one."""
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    return safe_correlation(metadata.get("correlation_id")) if isinstance(metadata, dict) else None


def incoming(event: dict[str, Any]) -> Incoming:
    """The receipt of a verified event and its task: a type we do not handle is recorded
    as ignored; the task continues the story of the Checkout Session it names, if any."""
    return Incoming(
        source="stripe",
        external_id=event["id"],
        event_type=event["type"],
        details=worker_details(event),
        kind=catalog.STRIPE_EVENT,
        ignored=event["type"] not in HANDLED_TYPES,
        correlation=linked_correlation(event),
    )
