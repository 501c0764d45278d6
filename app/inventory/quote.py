"""Quotes: which room types can host a stay, night by night, in integer cents. Read only.

``quote`` lists the room types one of which hosts the party; ``offers`` the ways the inn
hosts it, in one room or, when no single room is free and big enough, in several.
"""

from __future__ import annotations

import datetime as dt
import math
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
    available: int = 1  # units free on every night of the stay

    @property
    def total_cents(self) -> int:
        return sum(night.rate_cents for night in self.nights)


@dataclass(frozen=True)
class Offer:
    """One way to host the whole party: units of one or more room types."""

    rooms: tuple[tuple[QuoteOption, int], ...]  # (room type, units), largest room first

    @property
    def total_cents(self) -> int:
        return sum(option.total_cents * units for option, units in self.rooms)

    @property
    def units(self) -> int:
        return sum(units for _, units in self.rooms)

    @property
    def name(self) -> str:
        """ "Suíte Mar" for one room, "2x Standard + Família" for several."""
        return " + ".join(
            option.name if units == 1 else f"{units}x {option.name}" for option, units in self.rooms
        )


async def _for_sale(
    conn: asyncpg.Connection, prop: Property, stay: Stay, today: dt.date | None
) -> tuple[list[QuoteOption], int, int]:
    """Room types with every night of the stay for sale; the most guests one room hosts, and
    the inn as a whole (each room type's occupancy times its rooms), over the stay's nights."""
    if stay.checkin < (today or prop.today()):
        raise BadRequest("check-in is in the past")
    rows = await conn.fetch(QUERIES["quote_nights"], prop.id, stay.checkin, stay.checkout)
    by_room: dict[int, list[asyncpg.Record]] = {}
    for row in rows:
        by_room.setdefault(row["room_type_id"], []).append(row)
    largest = max((nights[0]["max_occupancy"] for nights in by_room.values()), default=0)
    capacity = sum(
        nights[0]["max_occupancy"] * min(n["inv_total"] for n in nights)
        for nights in by_room.values()
    )
    options = [
        QuoteOption(
            room_type_id=room_type_id,
            code=nights[0]["code"],
            name=nights[0]["name"],
            max_occupancy=nights[0]["max_occupancy"],
            nights=tuple(Night(n["date"], n["rate_cents"]) for n in nights),
            available=min(n["available"] for n in nights),
        )
        for room_type_id, nights in by_room.items()
        if len(nights) == stay.nights
        and all(n["available"] >= 1 and not n["stop_sell"] for n in nights)
    ]
    options.sort(key=lambda option: (option.total_cents, option.room_type_id))
    return options, largest, capacity


async def quote(
    conn: asyncpg.Connection, prop: Property, stay: Stay, *, today: dt.date | None = None
) -> list[QuoteOption]:
    """Room types that host ``stay.guests`` with every night for sale, cheapest first.

    Raises BadRequest for a stay in the past or more guests than any room type hosts.
    """
    options, largest, _ = await _for_sale(conn, prop, stay, today)
    if largest and largest < stay.guests:
        raise BadRequest(f"no room hosts {stay.guests} guests (at most {largest})")
    return [option for option in options if option.max_occupancy >= stay.guests]


async def offers(
    conn: asyncpg.Connection,
    prop: Property,
    stay: Stay,
    *,
    today: dt.date | None = None,
    limit: int = 3,
) -> list[Offer]:
    """Ways to host the whole party, fewest rooms then cheapest first: one room when a free
    one is big enough, else several.

    Raises BadRequest for a stay in the past or more guests than the whole inn hosts.
    """
    options, _, capacity = await _for_sale(conn, prop, stay, today)
    if capacity and capacity < stay.guests:
        raise BadRequest(f"the inn hosts at most {capacity} guests")
    single = [Offer(((o, 1),)) for o in options if o.max_occupancy >= stay.guests]
    found = single or _combinations(options, stay.guests)
    unique = {tuple((o.room_type_id, n) for o, n in offer.rooms): offer for offer in found}
    ranked = sorted(unique.values(), key=lambda offer: (offer.units, offer.total_cents))
    return ranked[:limit]


def _combinations(options: list[QuoteOption], guests: int) -> list[Offer]:
    """Several rooms for a party no free room hosts alone: rooms of one type each, and the
    largest rooms first topped up with the cheapest room that fits the rest."""
    found = [
        _offer({o: math.ceil(guests / o.max_occupancy)})
        for o in options
        if math.ceil(guests / o.max_occupancy) <= o.available
    ]
    units: dict[QuoteOption, int] = {}
    left = guests
    for option in sorted(options, key=lambda o: (-o.max_occupancy, o.total_cents)):
        units[option] = min(option.available, left // option.max_occupancy)
        left -= units[option] * option.max_occupancy
    while left > 0:
        spare = [o for o in options if units.get(o, 0) < o.available]
        if not spare:
            return found  # every free room together is too small
        fits = [o for o in spare if o.max_occupancy >= left]
        pick = (
            min(fits, key=lambda o: o.total_cents)
            if fits
            else max(spare, key=lambda o: o.max_occupancy)
        )
        units[pick] = units.get(pick, 0) + 1
        left -= pick.max_occupancy
    return [*found, _offer(units)]


def _offer(units: dict[QuoteOption, int]) -> Offer:
    rooms = [(option, n) for option, n in units.items() if n]
    return Offer(tuple(sorted(rooms, key=lambda room: (-room[0].max_occupancy, room[0].name))))
