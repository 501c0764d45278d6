"""Quotes: which room types can host a stay, night by night, in integer cents. Read only."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import asyncpg

from app.db import QUERIES
from app.errors import BadRequest
from app.inventory.properties import Property
from app.inventory.stay import Stay


@dataclass(frozen=True)
class Night:
    date: dt.date
    rate_cents: int


@dataclass(frozen=True)
class QuoteOption:
    room_type_id: int
    code: str
    name: str
    max_occupancy: int
    nights: tuple[Night, ...]

    @property
    def total_cents(self) -> int:
        return sum(night.rate_cents for night in self.nights)


async def quote(
    conn: asyncpg.Connection, prop: Property, stay: Stay, *, today: dt.date | None = None
) -> list[QuoteOption]:
    """Room types that host ``stay.guests`` with every night for sale, cheapest first.

    Raises BadRequest for a stay in the past or more guests than any room type hosts.
    """
    if stay.checkin < (today or prop.today()):
        raise BadRequest("check-in is in the past")
    rows = await conn.fetch(QUERIES["quote_nights"], prop.id, stay.checkin, stay.checkout)
    by_room: dict[int, list[asyncpg.Record]] = {}
    for row in rows:
        by_room.setdefault(row["room_type_id"], []).append(row)
    if by_room and all(nights[0]["max_occupancy"] < stay.guests for nights in by_room.values()):
        most = max(nights[0]["max_occupancy"] for nights in by_room.values())
        raise BadRequest(f"no room hosts {stay.guests} guests (at most {most})")
    options = [
        QuoteOption(
            room_type_id=room_type_id,
            code=nights[0]["code"],
            name=nights[0]["name"],
            max_occupancy=nights[0]["max_occupancy"],
            nights=tuple(Night(n["date"], n["rate_cents"]) for n in nights),
        )
        for room_type_id, nights in by_room.items()
        if nights[0]["max_occupancy"] >= stay.guests
        and len(nights) == stay.nights
        and all(n["available"] >= 1 and not n["stop_sell"] for n in nights)
    ]
    return sorted(options, key=lambda option: (option.total_cents, option.room_type_id))
