"""Holding nights and opening their Checkout Session: the step a guest's "yes" triggers.

Three atomic phases, each ending in a known state: the hold transaction (with its
hold.created outbox row), the relay of that row (the expire-<hold id> task at
expires_at), then the Checkout Session (Stripe, no transaction open). A crash between
phases leaves an active hold that the relay task and the sweep still expire.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import stripe

from app.inventory.holds import Hold, HoldRequest, create_hold
from app.logging import correlation_id
from app.payments.checkout import CheckoutSession, create_checkout_session
from app.settings import Settings
from app.tasks.outbox import relay
from app.tasks.queue import TaskQueue


@dataclass(frozen=True)
class Booking:
    hold: Hold
    checkout: CheckoutSession


async def hold_and_checkout(
    pool: asyncpg.Pool,
    queue: TaskQueue,
    client: stripe.StripeClient,
    settings: Settings,
    request: HoldRequest,
) -> Booking:
    async with pool.acquire() as conn:
        hold = await create_hold(
            conn,
            request,
            ttl_seconds=settings.hold_ttl_seconds,
            correlation_id=correlation_id.get(),
        )
    await relay(pool, queue)
    async with pool.acquire() as conn:
        checkout = await create_checkout_session(client, conn, hold.id, settings)
    return Booking(hold=hold, checkout=checkout)
