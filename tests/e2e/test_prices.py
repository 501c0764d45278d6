"""One price: for any calendar, stay and party, what the quote offers is what the hold
charges and what Stripe's Checkout Session asks for — and all three are the price the
rates' definition gives, computed here independently of the SQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from app.errors import BadRequest, StayRuleBroken
from app.inventory.holds import HoldRequest, Unit
from app.inventory.properties import get_property
from app.inventory.property_file import ChildRate, PropertySpec, RoomTypeSpec, SeasonSpec
from app.inventory.quote import offers
from app.inventory.setup import import_property
from app.inventory.stay import Party, Stay
from app.payments.booking import hold_and_checkout
from app.tasks.outbox import relaying
from tests.e2e.conftest import Stack
from tests.inventory.conftest import START

DAYS = 14
_codes = itertools.count()


@dataclass(frozen=True)
class Case:
    rooms: tuple[RoomTypeSpec, ...]
    bands: tuple[ChildRate, ...]
    seasons: tuple[SeasonSpec, ...]
    first: int
    nights: int
    party: Party


@st.composite
def _room(draw: st.DrawFn, code: str) -> RoomTypeSpec:
    occupancy = draw(st.integers(1, 5))
    return RoomTypeSpec(
        code=code,
        name=code.title(),
        max_occupancy=occupancy,
        units=draw(st.integers(1, 3)),
        rate_cents=draw(st.integers(1_000, 90_000)),
        base_occupancy=draw(st.integers(1, occupancy)),
        extra_adult_cents=draw(st.integers(0, 20_001)),
        max_adults=draw(st.integers(1, occupancy)),
    )


@st.composite
def _season(draw: st.DrawFn, codes: list[str]) -> SeasonSpec:
    first = draw(st.integers(0, DAYS - 1))
    last = draw(st.integers(first, DAYS - 1))
    weekdays = draw(st.none() | st.frozensets(st.integers(0, 6), min_size=1))
    values = {
        code: draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "rate_cents": st.integers(0, 99_999),
                    "extra_adult_cents": st.integers(0, 30_001),
                },
            )
        )
        for code in draw(st.lists(st.sampled_from(codes), min_size=1, unique=True))
    }
    return SeasonSpec(
        START + dt.timedelta(days=first), START + dt.timedelta(days=last), weekdays, values
    )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    codes = ["a", "b"][: draw(st.integers(1, 2))]
    ages = draw(st.lists(st.integers(0, 17), max_size=3, unique=True).map(sorted))
    first = draw(st.integers(0, DAYS - 2))
    return Case(
        rooms=tuple(draw(_room(code)) for code in codes),
        bands=tuple(ChildRate(age, draw(st.integers(0, 100))) for age in ages),
        seasons=tuple(draw(st.lists(_season(codes), max_size=3))),
        first=first,
        nights=draw(st.integers(1, DAYS - 1 - first)),
        party=Party(
            draw(st.integers(1, 6)),
            tuple(draw(st.lists(st.integers(0, 17) | st.none(), max_size=3))),
        ),
    )


def _night(case: Case, room: RoomTypeSpec, day: dt.date) -> tuple[int, int]:
    """(rate, extra adult) of one night: the room type's, then each season in order."""
    rate, extra = room.rate_cents, room.extra_adult_cents
    for season in case.seasons:
        values = season.room_types.get(room.code, {})
        if season.start <= day <= season.end and (
            season.weekdays is None or day.weekday() in season.weekdays
        ):
            rate = int(values.get("rate_cents", rate))
            extra = int(values.get("extra_adult_cents", extra))
    return rate, extra


def _price(case: Case, room: RoomTypeSpec, party: Party, stay: Stay) -> int:
    """The definition: the rate covers base_occupancy guests, adults first, then children
    oldest first; each guest beyond pays the night's extra adult, or a child their band's
    percent of it rounded half up (a child older than every band, or of no stated age,
    pays as an adult)."""

    def band(age: int | None) -> int | None:
        fits = [b.percent for b in case.bands if age is not None and age <= b.max_age]
        return fits[0] if fits else None

    children = sorted(party.children_ages, key=lambda a: -1 if a is None else -a)
    as_adults = party.adults + sum(1 for age in children if band(age) is None)
    shares = [pct for age in children if (pct := band(age)) is not None]
    base = room.base_occupancy or room.max_occupancy
    extra_adults = max(as_adults - base, 0)
    paying_children = shares[max(base - as_adults, 0) :]
    total = 0
    for day in stay.dates():
        rate, extra = _night(case, room, day)
        total += rate + extra * extra_adults
        total += sum(
            int((Decimal(extra) * pct / 100).quantize(Decimal(1), ROUND_HALF_UP))
            for pct in paying_children
        )
    return total


async def _check(stack: Stack, case: Case) -> bool:
    """Quote, hold and pay one case; False when the inn has no way to host it."""
    code = f"prices-{next(_codes)}"
    spec = PropertySpec(
        code=code,
        name="Pousada",
        timezone="America/Sao_Paulo",
        currency="BRL",
        whatsapp={"phone_number_id": f"pn-{code}"},
        room_types=case.rooms,
        overrides=(),
        start=START,
        end=START + dt.timedelta(days=DAYS),
        children=case.bands,
        seasons=case.seasons,
    )
    checkin = START + dt.timedelta(days=case.first)
    stay = Stay(checkin, checkin + dt.timedelta(days=case.nights), case.party.guests)
    async with stack.pool.acquire() as conn:
        await import_property(conn, spec)
        prop = await get_property(conn, code)
        try:
            found = await offers(conn, prop, stay, case.party, today=START)
        except (BadRequest, StayRuleBroken):
            return False
    if not found:
        return False
    offer = found[0]
    rooms = {room.code: room for room in case.rooms}
    expected = sum(_price(case, rooms[o.code], p, stay) for o, p in offer.units)
    request = HoldRequest(
        prop.id,
        stay,
        tuple(Unit(o.room_type_id, p) for o, p in offer.units),
        uuid.uuid4().hex,
    )
    async with relaying(stack.pool, stack.queue):
        booking = await hold_and_checkout(stack.pool, stack.client, stack.settings, request)
    session = stack.stripe.sessions[booking.checkout.id]
    assert (offer.total_cents, booking.hold.total_cents, session["amount_total"]) == (
        expected,
        expected,
        expected,
    ), case
    lines = await stack.pool.fetch(
        "SELECT total_cents FROM hold_units WHERE hold_id = $1 ORDER BY unit", booking.hold.id
    )
    assert [r["total_cents"] for r in lines] == [o.total_cents for o, _ in offer.units]
    return True


async def test_quote_hold_and_checkout_charge_the_same(stack: Stack) -> None:
    """Random room types (base occupancy, extra adult, max adults), children's bands,
    seasons with weekdays, stays and parties (children of unknown age too): the first offer
    of the quote, the hold made of its units and the Checkout Session all charge the price
    the definition gives."""
    loop = asyncio.get_running_loop()
    hosted: list[bool] = []

    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(cases())
    def check(case: Case) -> None:
        done = asyncio.run_coroutine_threadsafe(_check(stack, case), loop).result(timeout=60)
        hosted.append(done)
        assume(done)

    await asyncio.to_thread(check)
    assert sum(hosted) >= 50, f"only {sum(hosted)} of {len(hosted)} cases could be hosted"
