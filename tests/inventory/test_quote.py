"""Quotes: available room types with nightly breakdown and totals, read only."""

from __future__ import annotations

import datetime as dt

import pytest

from app.errors import BadRequest, NotFound
from app.inventory.properties import get_property
from app.inventory.property_file import OverrideSpec
from app.inventory.quote import offers, quote
from app.inventory.stay import Stay
from tests.inventory.conftest import START, make_calendar


async def test_quote_lists_hosting_room_types_with_breakdown(conn) -> None:  # type: ignore[no-untyped-def]
    """Room types that host the guests with every night for sale, cheapest first, each
    with its nightly rates and total in cents; stop-sold or sold-out room types drop out."""
    night2 = START + dt.timedelta(days=1)
    cal = await make_calendar(
        conn,
        [("std", 2, 3, 30000), ("sup", 3, 2, 45000), ("fam", 5, 1, 70000), ("tiny", 1, 5, 10000)],
        overrides=(
            OverrideSpec("std", night2, night2, None, 39000, None),
            OverrideSpec("sup", night2, night2, None, None, True),
        ),
    )
    await conn.execute(
        "UPDATE ari_days SET inv_booked = 1 WHERE room_type_id = $1", cal.room_type_ids["fam"]
    )
    stay = Stay(START, START + dt.timedelta(days=3), 2)
    options = await quote(conn, cal.property, stay, today=START)
    assert [o.code for o in options] == ["std"]
    assert [(n.date, n.rate_cents) for n in options[0].nights] == [
        (START, 30000),
        (night2, 39000),
        (START + dt.timedelta(days=2), 30000),
    ]
    assert options[0].total_cents == 99000
    later = Stay(START + dt.timedelta(days=2), START + dt.timedelta(days=4), 2)
    assert [o.code for o in await quote(conn, cal.property, later, today=START)] == ["std", "sup"]
    await conn.execute("UPDATE ari_days SET inv_booked = 0")


async def test_quote_validates_occupancy_dates_and_property(conn) -> None:  # type: ignore[no-untyped-def]
    """More guests than any room hosts, a past check-in or an unknown property: clear errors;
    dates outside the calendar: no options."""
    cal = await make_calendar(conn, [("std", 2, 3, 30000)], days=10)
    with pytest.raises(BadRequest, match="at most 2"):
        await quote(conn, cal.property, Stay(START, START + dt.timedelta(days=1), 3), today=START)
    with pytest.raises(BadRequest, match="past"):
        await quote(
            conn,
            cal.property,
            Stay(START, START + dt.timedelta(days=1), 2),
            today=START + dt.timedelta(days=1),
        )
    far = Stay(START + dt.timedelta(days=8), START + dt.timedelta(days=12), 2)
    assert await quote(conn, cal.property, far, today=START) == []
    with pytest.raises(NotFound):
        await get_property(conn, "nope")


async def test_offers_host_a_party_in_one_room_or_several(conn) -> None:  # type: ignore[no-untyped-def]
    """One free room big enough: single-room offers only. A party no free room hosts alone:
    the fewest rooms first, then the cheapest (rooms of one type, or the largest topped up).
    More guests than every room together: a clear error naming the inn's capacity."""
    cal = await make_calendar(conn, [("std", 2, 3, 30000), ("fam", 4, 1, 50000)], days=10)
    stay = Stay(START, START + dt.timedelta(days=2), 4)
    found = await offers(conn, cal.property, stay, today=START)
    assert [(o.name, o.total_cents) for o in found] == [("Fam", 100000)]

    six = await offers(conn, cal.property, Stay(stay.checkin, stay.checkout, 6), today=START)
    assert [(o.name, [p.adults for _, p in o.units], o.total_cents) for o in six] == [
        ("Fam + Std", [4, 2], 160000),
        ("3x Std", [2, 2, 2], 180000),
    ]
    await conn.execute(
        "UPDATE ari_days SET inv_booked = 1 WHERE room_type_id = $1", cal.room_type_ids["fam"]
    )  # the family room is taken: four guests need two standard rooms
    assert [o.name for o in await offers(conn, cal.property, stay, today=START)] == ["2x Std"]
    with pytest.raises(BadRequest, match="at most 10 guests"):
        await offers(conn, cal.property, Stay(stay.checkin, stay.checkout, 11), today=START)
    await conn.execute("UPDATE ari_days SET inv_booked = 0")
