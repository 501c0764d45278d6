"""Holding nights and opening their Checkout Session: the step a guest's "yes" triggers.

Two atomic phases, each ending in a known state: the hold transaction (with its
hold.created outbox row, relayed after the handler into the expire-<hold id> task at
expires_at), then the Checkout Session (Stripe, no transaction open). A crash between
phases leaves an active hold that its expire task, or the sweep, still expires.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import stripe

from app.inventory.holds import Hold, HoldRequest, create_hold
from app.payments.checkout import CheckoutSession, create_checkout_session
from app.settings import Settings


@dataclass(frozen=True)
class Booking:
    hold: Hold
    checkout: CheckoutSession


async def hold_and_checkout(
    pool: asyncpg.Pool,
    client: stripe.StripeClient,
    settings: Settings,
    request: HoldRequest,
) -> Booking:
    async with pool.acquire() as conn:
        hold = await create_hold(conn, request, ttl_seconds=settings.hold_ttl_seconds)
    async with pool.acquire() as conn:
        checkout = await create_checkout_session(client, conn, hold.id, settings)
    return Booking(hold=hold, checkout=checkout)
