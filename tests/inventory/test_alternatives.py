"""The nearest stays that can be sold when the one asked for cannot: one query over the
surrounding nights, every stay it offers allowed by every rule and free for the party."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from app.inventory.quote import alternatives, offers
from app.inventory.stay import Party, Stay
from tests.inventory.conftest import START, make_calendar

TODAY = START - dt.timedelta(days=30)


class Counting:
    """A connection that counts the statements sent through it."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn, self.statements = conn, 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.conn, name)
        if name not in ("fetch", "fetchrow", "fetchval", "execute", "executemany"):
            return method

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.statements += 1
            return await method(*args, **kwargs)

        return counted


async def test_a_full_week_costs_one_query_and_offers_stays_that_hold(
    conn: asyncpg.Connection,
) -> None:
    cal = await make_calendar(conn, [("std", 2, 1, 30000), ("fam", 4, 1, 50000)], days=40)
    week = Stay(START + dt.timedelta(days=14), START + dt.timedelta(days=21), 2)
    await conn.execute(
        "UPDATE ari_days SET stop_sell = true WHERE date >= $1 AND date < $2",
        week.checkin + dt.timedelta(days=2),
        week.checkin + dt.timedelta(days=4),
    )
    assert await offers(conn, cal.property, week, today=TODAY) == []
    counting = Counting(conn)
    found = await alternatives(counting, cal.property, week, Party(2), today=TODAY)  # type: ignore[arg-type]
    assert counting.statements == 1
    assert len(found) == 3
    for alt in found:  # a week each, the nearest arrivals after the closed nights or before
        assert alt.stay.nights == week.nights
        assert (
            not week.checkin + dt.timedelta(days=2)
            <= alt.stay.checkin
            < week.checkin + dt.timedelta(days=4)
        )
        assert alt.name == "Std" and alt.total_cents == 7 * 30000  # the cheaper room that fits
    for alt in found:  # each one quotes, at the price offered
        [offer] = [
            o
            for o in await offers(conn, cal.property, alt.stay, today=TODAY)
            if o.units[0][0].room_type_id == alt.room_type_id
        ]
        assert offer.total_cents == alt.total_cents


async def test_a_minimum_stay_offers_the_same_arrival_longer_first(
    conn: asyncpg.Connection,
) -> None:
    cal = await make_calendar(conn, [("std", 2, 1, 30000)], days=40)
    asked = Stay(START + dt.timedelta(days=10), START + dt.timedelta(days=12), 2)
    await conn.execute("UPDATE ari_days SET min_stay = 4 WHERE date = $1", asked.checkin)
    found = await alternatives(conn, cal.property, asked, Party(2), today=TODAY)
    stays = [(a.stay.checkin - asked.checkin).days for a in found], [a.stay.nights for a in found]
    # The day before (2 nights), the same arrival at its minimum (4), the day after (2).
    assert stays == ([-1, 0, 1], [2, 4, 2])


async def test_no_alternative_before_today_or_for_a_party_no_room_fits(
    conn: asyncpg.Connection,
) -> None:
    cal = await make_calendar(conn, [("std", 2, 1, 30000)], days=40)
    asked = Stay(START + dt.timedelta(days=1), START + dt.timedelta(days=3), 2)
    await conn.execute("UPDATE ari_days SET stop_sell = true WHERE date = $1", asked.checkin)
    found = await alternatives(conn, cal.property, asked, Party(2), today=START)
    assert found and all(a.stay.checkin >= START for a in found)
    assert await alternatives(conn, cal.property, asked, Party(3), today=START) == []
