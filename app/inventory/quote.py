"""Quotes: which room types can host a stay for a party, night by night, in integer cents.
Read only.

``quote`` lists the room types one unit of which hosts the party; ``offers`` the ways the
inn hosts it, in one unit or, when no single free unit is big enough, in several, the
party split among them; ``alternatives`` the nearest stays that can be sold when the one
asked for cannot (one read over the surrounding nights). Prices come from the database
(the functions create_hold prices with), never from Python, so a quote is what the hold
will charge.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple

import asyncpg

from app.db import QUERIES
from app.errors import BadRequest, StayRuleBroken
from app.inventory.properties import Property
from app.inventory.stay import MAX_STAY_NIGHTS, Party, Stay


class Night(NamedTuple):
    date: dt.date
    rate_cents: int  # the party's price for the night


@dataclass(frozen=True)
class QuoteOption:
    """One unit of a room type, priced for one party."""

    room_type_id: int
    code: str
    name: str
    max_occupancy: int
    max_adults: int
    nights: tuple[Night, ...]
    total_cents: int  # of the nights
    available: int = 1  # units free on every night of the stay


@dataclass(frozen=True)
class Offer:
    """One way to host the whole party: units, each priced for the party sleeping in it."""

    units: tuple[tuple[QuoteOption, Party], ...]  # largest room first

    @property
    def total_cents(self) -> int:
        return sum(option.total_cents for option, _ in self.units)

    @property
    def name(self) -> str:
        """ "Suíte Mar" for one unit, "2x Standard + Família" for several."""
        counts = Counter(option.name for option, _ in self.units)
        return " + ".join(name if n == 1 else f"{n}x {name}" for name, n in counts.items())


@dataclass(frozen=True)
class _RoomType:
    """A room type over the stay: what the calendar allows, and its price per party."""

    priced: list[QuoteOption]  # for each party asked, in order
    fits: list[bool]  # whether each party fits
    for_sale: bool  # every night there, none stop-sold, a unit free, no stay rule against
    rooms: int
    refusal: StayRuleBroken | None

    @property
    def option(self) -> QuoteOption:
        """Priced for the first party asked."""
        return self.priced[0]


async def _room_types(
    conn: asyncpg.Connection, prop: Property, stay: Stay, parties: list[Party], today: dt.date
) -> list[_RoomType]:
    if stay.checkin < today:
        raise BadRequest("check-in is in the past")
    # One read per party (usually one): the room types' nights priced for it.
    reads = [
        await conn.fetch(
            QUERIES["quote_nights"],
            prop.id,
            stay.checkin,
            stay.checkout,
            party.adults,
            list(party.children_ages),
        )
        for party in parties
    ]
    rows_of: dict[int, list[asyncpg.Record]] = {}
    for rows in reads:
        for row in rows:
            rows_of.setdefault(row["room_type_id"], []).append(row)
    found = []
    for per_party in rows_of.values():
        if len(per_party) != len(parties):
            continue  # a room type created between the reads
        first = per_party[0]
        rule = first["rule"]
        found.append(
            _RoomType(
                priced=[
                    QuoteOption(
                        room_type_id=row["room_type_id"],
                        code=row["code"],
                        name=row["name"],
                        max_occupancy=row["max_occupancy"],
                        max_adults=row["max_adults"],
                        nights=tuple(map(Night, row["dates"] or (), row["prices"] or ())),
                        total_cents=sum(row["prices"] or ()),
                        available=max(row["available"] or 0, 0),
                    )
                    for row in per_party
                ],
                fits=[row["fits"] for row in per_party],
                for_sale=first["nights"] == stay.nights
                and first["open"]
                and first["available"] >= 1
                and rule is None,
                rooms=first["rooms"] or 0,
                refusal=_refusal(rule, first, stay),
            )
        )
    return found


def _refusal(rule: str | None, row: asyncpg.Record, stay: Stay) -> StayRuleBroken | None:
    """The stay rule that refuses the stay, with the date that sets it and its bound."""
    if rule is None or rule == "unavailable":
        return None
    if rule == "closed_to_departure":
        return StayRuleBroken(rule, stay.checkout)
    return StayRuleBroken(
        rule, stay.checkin, row[rule] if rule in ("min_stay", "max_stay") else None
    )


def _cheapest(options: list[QuoteOption]) -> list[QuoteOption]:
    return sorted(options, key=lambda option: (option.total_cents, option.room_type_id))


async def quote(
    conn: asyncpg.Connection,
    prop: Property,
    stay: Stay,
    party: Party | None = None,
    *,
    today: dt.date | None = None,
) -> list[QuoteOption]:
    """Room types one unit of which hosts the party (by default ``stay.guests`` adults)
    with every night for sale and no stay rule against it, cheapest first.

    Raises BadRequest for a stay in the past or a party no room type hosts.
    """
    party = party or Party(stay.guests)
    room_types = await _room_types(conn, prop, stay, [party], today or prop.today())
    if room_types and not any(rt.fits[0] for rt in room_types):
        most = max(rt.option.max_occupancy for rt in room_types)
        raise BadRequest(f"no room hosts this party of {party.guests} (at most {most})")
    return _cheapest([rt.option for rt in room_types if rt.for_sale and rt.fits[0]])


async def offers(
    conn: asyncpg.Connection,
    prop: Property,
    stay: Stay,
    party: Party | None = None,
    *,
    today: dt.date | None = None,
    limit: int = 3,
) -> list[Offer]:
    """Ways to host the whole party, fewest units then cheapest first: one unit when a
    free one fits the party, else several, the party split among them.

    Raises BadRequest for a stay in the past or more guests than the whole inn hosts, and
    StayRuleBroken when a stay rule is all that keeps a room that fits from the party.
    """
    party = party or Party(stay.guests)
    today = today or prop.today()
    room_types = await _room_types(conn, prop, stay, [party], today)
    capacity = sum(rt.option.max_occupancy * rt.rooms for rt in room_types)
    if capacity and capacity < party.guests:
        raise BadRequest(f"the inn hosts at most {capacity} guests")
    single = [Offer(((rt.option, party),)) for rt in room_types if rt.for_sale and rt.fits[0]]
    if single:
        return sorted(single, key=lambda offer: offer.total_cents)[:limit]
    refused = [rt.refusal for rt in room_types if rt.refusal and rt.fits[0]]
    for_sale = [rt.option for rt in room_types if rt.for_sale]
    splits = [
        split for units in _combinations(for_sale, party.guests) if (split := _split(units, party))
    ]
    if not splits:
        if refused:
            raise refused[0]
        return []
    # The parties the units would take, priced on their room types in one more read.
    wanted = {p: i for i, p in enumerate(dict.fromkeys(p for split in splits for _, p in split))}
    priced = {
        rt.option.room_type_id: rt
        for rt in await _room_types(conn, prop, stay, list(wanted), today)
    }
    found = [
        Offer(tuple((priced[o.room_type_id].priced[wanted[p]], p) for o, p in split))
        for split in splits
        if all(priced[o.room_type_id].fits[wanted[p]] for o, p in split)
    ]
    unique = {tuple((o.room_type_id, p) for o, p in offer.units): offer for offer in found}
    ranked = sorted(unique.values(), key=lambda offer: (len(offer.units), offer.total_cents))
    return ranked[:limit]


@dataclass(frozen=True)
class Alternative:
    """A stay near the one asked for that one unit of a room type hosts the party in."""

    stay: Stay
    room_type_id: int
    name: str
    total_cents: int


async def alternatives(
    conn: asyncpg.Connection,
    prop: Property,
    stay: Stay,
    party: Party,
    *,
    today: dt.date,
    shift_days: int = 7,
    limit: int = 3,
) -> list[Alternative]:
    """The nearest stays (arrival moved by up to ``shift_days``, length nearest the one
    asked for) that every rule of the calendar allows, a unit is free for and fits the
    party: nearest first, the same arrival first among equals. One query."""
    rows = await conn.fetch(
        QUERIES["stay_alternatives"],
        prop.id,
        stay.checkin,
        stay.nights,
        party.adults,
        list(party.children_ages),
        shift_days,
        today,
        MAX_STAY_NIGHTS,
        limit,
    )
    return [
        Alternative(
            Stay(row["checkin"], row["checkout"], party.guests),
            row["room_type_id"],
            row["name"],
            row["total_cents"],
        )
        for row in rows
    ]


def _combinations(options: list[QuoteOption], guests: int) -> list[list[QuoteOption]]:
    """Units for a party no free unit hosts alone: units of one room type each, and the
    largest units first topped up with the cheapest that fits the rest."""
    found = [
        [o] * math.ceil(guests / o.max_occupancy)
        for o in options
        if math.ceil(guests / o.max_occupancy) <= o.available
    ]
    taken: Counter[int] = Counter()
    units: list[QuoteOption] = []
    left = guests
    for option in sorted(options, key=lambda o: (-o.max_occupancy, o.total_cents)):
        n = min(option.available, left // option.max_occupancy)
        units += [option] * n
        taken[option.room_type_id] += n
        left -= n * option.max_occupancy
    while left > 0:
        spare = [o for o in options if taken[o.room_type_id] < o.available]
        if not spare:
            return found  # every free unit together is too small
        fits = [o for o in spare if o.max_occupancy >= left]
        pick = (
            min(fits, key=lambda o: o.total_cents)
            if fits
            else max(spare, key=lambda o: o.max_occupancy)
        )
        units.append(pick)
        taken[pick.room_type_id] += 1
        left -= pick.max_occupancy
    return [*found, units]


def _split(units: list[QuoteOption], party: Party) -> list[tuple[QuoteOption, Party]] | None:
    """The party spread over the units, largest first: an adult in each, then the other
    adults as each unit's adults allow, then the children (oldest first) where room is
    left. None when the party cannot be spread so (fewer adults than units)."""
    units = sorted(units, key=lambda o: (-o.max_occupancy, o.name))
    if party.adults < len(units):
        return None
    adults = [1] * len(units)
    left = party.adults - len(units)
    for i, option in enumerate(units):
        more = min(left, min(option.max_adults, option.max_occupancy) - 1)
        adults[i] += more
        left -= more
    if left:
        return None
    children: list[list[int | None]] = [[] for _ in units]
    oldest_first = sorted(party.children_ages, key=lambda age: -1 if age is None else -age)
    for age in oldest_first:
        room = next(
            (i for i, o in enumerate(units) if adults[i] + len(children[i]) < o.max_occupancy),
            None,
        )
        if room is None:
            return None
        children[room].append(age)
    return [(option, Party(adults[i], tuple(children[i]))) for i, option in enumerate(units)]
