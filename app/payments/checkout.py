"""Checkout Sessions for holds.

Every parameter is derived from the hold row and the idempotency key from the hold
id, so a retry (ours or the library's) sends identical parameters and gets the same
session back. No transaction is open while Stripe is called.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import asyncpg
import stripe

from app.db import QUERIES
from app.errors import Conflict, NotFound, Unavailable
from app.settings import STRIPE_MIN_SESSION_SECONDS, Settings

STRIPE_MIN_SESSION = dt.timedelta(seconds=STRIPE_MIN_SESSION_SECONDS)
# The session is created right after its hold; this covers the gap between the two.
CREATION_SLACK = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str
    expires_at: dt.datetime


def session_expiry(hold_created: dt.datetime, hold_expires: dt.datetime, grace: int) -> dt.datetime:
    """Close the session ``grace`` seconds before the hold expires, but never sooner
    than Stripe's 30-minute minimum (counted from the hold's creation plus slack)."""
    return max(
        hold_expires - dt.timedelta(seconds=grace),
        hold_created + STRIPE_MIN_SESSION + CREATION_SLACK,
    )


async def create_checkout_session(
    client: stripe.StripeClient,
    conn: asyncpg.Connection,
    hold_id: uuid.UUID,
    settings: Settings,
    renewal: int = 0,
) -> CheckoutSession:
    """The hold's Checkout Session; ``renewal`` n > 0 opens its n-th new one, after the
    last expired and the hold was extended to HOLD_TTL_SECONDS from then."""
    hold = await conn.fetchrow(QUERIES["checkout_hold"], hold_id)
    if hold is None:
        raise NotFound("no such hold")
    if hold["status"] != "active":
        raise Conflict("the hold is no longer active")
    opened = hold["created_at"]
    if renewal:
        opened = hold["expires_at"] - dt.timedelta(seconds=settings.hold_ttl_seconds)
    expires_at = session_expiry(opened, hold["expires_at"], settings.checkout_grace_seconds)
    nights = (hold["checkout"] - hold["checkin"]).days
    params = {
        "mode": "payment",
        "client_reference_id": str(hold_id),
        "payment_method_types": list(settings.checkout_payment_methods),
        "expires_at": int(expires_at.timestamp()),
        "success_url": settings.checkout_success_url,
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": hold["currency"].lower(),
                    "unit_amount": hold["total_cents"],
                    "product_data": {
                        "name": f"{hold['property_name']}: {hold['checkin'].isoformat()}, "
                        f"{nights} night{'s' if nights != 1 else ''}",
                    },
                },
            }
        ],
        "metadata": {
            "hold_id": str(hold_id),
            "property_id": str(hold["property_id"]),
            "correlation_id": hold["correlation_id"] or "",
        },
    }
    try:
        session = await client.v1.checkout.sessions.create_async(
            params=params,  # type: ignore[arg-type]
            options={
                "idempotency_key": f"checkout-{hold_id}-r{renewal}"
                if renewal
                else f"checkout-{hold_id}"
            },
        )
    except stripe.StripeError as exc:
        raise Unavailable(f"Stripe refused the Checkout Session: {type(exc).__name__}") from None
    await conn.execute(
        QUERIES["record_checkout_session"],
        session.id,
        hold_id,
        hold["total_cents"],
        hold["currency"],
    )
    return CheckoutSession(id=session.id, url=session.url or "", expires_at=expires_at)
