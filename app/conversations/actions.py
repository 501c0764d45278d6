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
from app.inventory.quote import Offer, offers
from app.inventory.stay import Party, Stay
from app.payments.booking import Booking, hold_and_checkout

# Nearby stays offered when the dates asked for are full: check-in moved by up to a week.
ALTERNATIVE_SHIFT_DAYS = 7
MAX_ALTERNATIVES = 3


async def cancel(services: Services, hold_id: str, reason: str) -> bool:
    """Cancel the conversation's hold; False when it was no longer active."""
    async with services.pool.acquire() as conn:
        return await cancel_hold(conn, uuid.UUID(hold_id), reason)


async def quote_stay(
    services: Services, prop: Property, stay: Stay, party: Party, today: dt.date
) -> tuple[list[Offer], list[tuple[Stay, int]]]:
    """The ways to host the party (one room or several); when there are none, the nearest
    stays of the same length that can (closest check-in first). Raises BadRequest for a
    party the whole inn cannot host, StayRuleBroken when a stay rule refuses the dates."""
    async with services.pool.acquire() as conn:
        found = await offers(conn, prop, stay, party, today=today)
        if found:
            return found, []
        return [], await _alternatives(conn, prop, stay, party, today)


async def _alternatives(
    conn: asyncpg.Connection, prop: Property, wanted: Stay, party: Party, today: dt.date
) -> list[tuple[Stay, int]]:
    found: list[tuple[Stay, int]] = []
    for distance in range(1, ALTERNATIVE_SHIFT_DAYS + 1):
        for shift in (distance, -distance):
            checkin = wanted.checkin + dt.timedelta(days=shift)
            if checkin < today:
                continue
            candidate = Stay(checkin, checkin + dt.timedelta(days=wanted.nights), wanted.guests)
            try:
                options = await offers(conn, prop, candidate, party, today=today)
            except StayRuleBroken:
                continue  # not a stay the calendar sells
            if options:
                found.append((candidate, min(o.total_cents for o in options)))
                if len(found) == MAX_ALTERNATIVES:
                    return sorted(found, key=lambda alt: alt[0].checkin)
    return sorted(found, key=lambda alt: alt[0].checkin)


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
