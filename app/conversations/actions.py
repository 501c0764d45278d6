"""What the conversation does to the world: quotes, holds and their Checkout Sessions,
cancellations. Each call is one of the idempotent inventory or payment functions, so a
turn that is retried repeats them harmlessly; the engine decides which to call."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg

from app.conversations.model import Services
from app.db import QUERIES
from app.errors import StayRuleBroken
from app.inventory.holds import HoldRequest, cancel_hold
from app.inventory.properties import Property
from app.inventory.quote import Alternative, Offer, alternatives, offers
from app.inventory.stay import Party, Stay
from app.payments.booking import Booking, hold_and_checkout


async def cancel(services: Services, hold_id: str, reason: str) -> bool:
    """Cancel the conversation's hold; False when it was no longer active."""
    async with services.pool.acquire() as conn:
        return await cancel_hold(conn, uuid.UUID(hold_id), reason)


async def quote_stay(
    services: Services, prop: Property, stay: Stay, party: Party, today: dt.date
) -> tuple[list[Offer], list[Alternative], StayRuleBroken | None]:
    """The ways to host the party (one room or several); when there are none, the nearest
    stays one room hosts it in, and the stay rule that refused the dates if one did.
    Raises BadRequest for a party the whole inn cannot host."""
    async with services.pool.acquire() as conn:
        refusal = None
        try:
            found = await offers(conn, prop, stay, party, today=today)
        except StayRuleBroken as exc:  # a rule of the calendar, not a lack of rooms
            found, refusal = [], exc
        if found:
            return found, [], None
        return [], await alternatives(conn, prop, stay, party, today=today), refusal


async def policy(services: Services, prop: Property) -> list[tuple[int, int]]:
    """The inn's cancellation policy: (days before arrival, refund percent), most days first."""
    async with services.pool.acquire() as conn:
        tiers = await conn.fetch(QUERIES["cancellation_tiers"], prop.id)
    return [(t["days_before"], t["refund_percent"]) for t in tiers]


async def prices_children(services: Services, prop: Property) -> bool:
    """Whether a child's age changes the price (the inn has age bands)."""
    async with services.pool.acquire() as conn:
        return bool(await conn.fetchval(QUERIES["prices_children"], prop.id))


async def inn_capacity(services: Services, prop: Property) -> int:
    """The most guests the inn hosts at once, in all its rooms."""
    async with services.pool.acquire() as conn:
        return int(await conn.fetchval(QUERIES["inn_capacity"], prop.id, prop.today()) or 0)


async def hold_and_pay(services: Services, request: HoldRequest) -> Booking:
    """Hold the nights and open their Checkout Session (both keyed, so a retry repeats)."""
    return await hold_and_checkout(services.pool, services.stripe, services.settings, request)


async def hold_dates(conn: asyncpg.Connection, hold_id: str) -> Any:
    """The hold's stay (check-in, check-out), or None for a hold that is not ours."""
    return await conn.fetchrow(QUERIES["hold_stay"], uuid.UUID(hold_id))
