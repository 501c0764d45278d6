"""Calendar fixtures: a property with chosen room types and nights, imported for real."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import asyncpg
import pytest

from app.inventory.properties import Property, get_property
from app.inventory.property_file import OverrideSpec, PropertySpec, RoomTypeSpec
from app.inventory.setup import import_property

# Far enough ahead that "check-in in the past" never applies, whatever today is.
START = dt.date(2031, 3, 1)


@dataclass(frozen=True)
class Calendar:
    property: Property
    room_type_ids: dict[str, int]
    start: dt.date
    days: int


async def make_calendar(
    conn: asyncpg.Connection,
    rooms: list[tuple[str, int, int, int]],
    *,
    code: str = "test-inn",
    start: dt.date = START,
    days: int = 30,
    overrides: tuple[OverrideSpec, ...] = (),
) -> Calendar:
    """Import a property with ``rooms`` = [(code, max_occupancy, units, rate_cents)] and
    ``days`` nights from ``start``; the calendar also has the morning after the last
    night, since a stay can only check out on a date the calendar has."""
    spec = PropertySpec(
        code=code,
        name="Pousada Teste",
        timezone="America/Sao_Paulo",
        currency="BRL",
        whatsapp={"phone_number_id": f"pn-{code}"},
        room_types=tuple(
            RoomTypeSpec(c, c.title(), occ, units, rate) for c, occ, units, rate in rooms
        ),
        overrides=overrides,
        start=start,
        end=start + dt.timedelta(days=days),
    )
    await import_property(conn, spec)
    prop = await get_property(conn, code)
    ids = dict(await conn.fetch("SELECT code, id FROM room_types WHERE property_id = $1", prop.id))
    return Calendar(property=prop, room_type_ids=ids, start=start, days=days)


@pytest.fixture
async def calendar(conn: asyncpg.Connection) -> Calendar:
    """A pousada with 'std' (2 guests, 10 units, R$300) and 'fam' (4 guests, 2 units, R$500)."""
    return await make_calendar(conn, [("std", 2, 10, 30000), ("fam", 4, 2, 50000)])
