"""Rates and stay rules: occupancy pricing with children's age bands, seasons and weekday
rates on import, values set by hand that survive a re-import, and the stay rules the
quote and create_hold enforce."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import asyncpg
import orjson
import psycopg
import pytest

from app.errors import BadRequest, NothingAvailable, StayRuleBroken
from app.inventory.holds import HoldRequest, Unit, cancel_hold, convert_hold, create_hold
from app.inventory.properties import Property, get_property
from app.inventory.property_file import (
    ChildRate,
    OverrideSpec,
    PropertySpec,
    RoomTypeSpec,
    SeasonSpec,
    parse_property,
)
from app.inventory.quote import offers, quote
from app.inventory.setup import AriChange, import_property, set_ari
from app.inventory.stay import Party, Stay
from tests.inventory.conftest import START
from tests.support import (
    SAMPLE_PROPERTY,
    SERVE_ENV,
    app_env,
    connections,
    eventually,
    run_cli,
    sample_stay,
)

RATE, EXTRA = 30_000, 10_000
ODD_NIGHT = START + dt.timedelta(days=10)  # its extra adult is 10,001: children's shares round
BANDS = (ChildRate(1, 0), ChildRate(5, 25), ChildRate(11, 50))
FAM = RoomTypeSpec(
    "fam", "Família", 4, 3, RATE, base_occupancy=2, extra_adult_cents=EXTRA, max_adults=3
)


def _spec(
    seasons: tuple[SeasonSpec, ...] = (),
    rooms: tuple[RoomTypeSpec, ...] = (FAM,),
    overrides: tuple[OverrideSpec, ...] = (),
    days: int = 30,
) -> PropertySpec:
    return PropertySpec(
        code="rates-inn",
        name="Pousada das Tarifas",
        timezone="America/Sao_Paulo",
        currency="BRL",
        whatsapp={"phone_number_id": "pn-rates"},
        room_types=rooms,
        overrides=overrides,
        start=START,
        end=START + dt.timedelta(days=days),
        children=BANDS,
        seasons=seasons,
    )


async def _inn(conn: asyncpg.Connection, spec: PropertySpec) -> tuple[Property, dict[str, int]]:
    await import_property(conn, spec)
    prop = await get_property(conn, spec.code)
    ids = dict(await conn.fetch("SELECT code, id FROM room_types WHERE property_id = $1", prop.id))
    return prop, ids


def _stay(first: int, nights: int, party: Party) -> Stay:
    checkin = START + dt.timedelta(days=first)
    return Stay(checkin, checkin + dt.timedelta(days=nights), party.guests)


def _hold(prop: Property, stay: Stay, units: tuple[Unit, ...]) -> HoldRequest:
    return HoldRequest(prop.id, stay, units, uuid.uuid4().hex)


ODD = {"fam": {"extra_adult_cents": 10_001}}


@pytest.mark.parametrize(
    ("party", "first", "expected"),
    [
        (Party(2), 0, RATE),  # the base occupancy pays the rate
        (Party(1), 0, RATE),
        (Party(3), 0, RATE + EXTRA),  # an extra adult
        (Party(2, (1,)), 0, RATE),  # the free band
        (Party(2, (5,)), 0, RATE + 2_500),  # 5 is the last age of the 25 % band
        (Party(2, (6,)), 0, RATE + 5_000),  # 6 is the first of the 50 % band
        (Party(2, (11,)), 0, RATE + 5_000),
        (Party(2, (12,)), 0, RATE + EXTRA),  # older than every band: an adult
        (Party(2, (None,)), 0, RATE + EXTRA),  # age not said: priced as an adult
        (Party(1, (8, 3)), 0, RATE + 2_500),  # the 8-year-old takes the base, not the 3
        (Party(1, (3, 8)), 0, RATE + 2_500),  # in any order
        (Party(3, (8,)), 0, RATE + EXTRA + 5_000),  # adults fill the base first
        (Party(2, (4, 10)), 0, RATE + 2_500 + 5_000),
        (Party(2, (5,)), 10, RATE + 2_500),  # 10,001 x 25 % = 2,500.25 -> 2,500
        (Party(2, (6,)), 10, RATE + 5_001),  # 10,001 x 50 % = 5,000.5 -> 5,001
        (Party(3), 10, RATE + 10_001),
    ],
)
async def test_a_night_is_priced_for_its_party(
    conn: asyncpg.Connection, party: Party, first: int, expected: int
) -> None:
    """The quote, the hold and the hold's line charge the same: the rate for the base
    occupancy, then each extra adult and each extra child's band share, rounded half up."""
    prop, ids = await _inn(conn, _spec((SeasonSpec(ODD_NIGHT, ODD_NIGHT, None, ODD),)))
    stay = _stay(first, 1, party)
    (option,) = await quote(conn, prop, stay, party, today=START)
    assert option.total_cents == expected
    hold = await create_hold(conn, _hold(prop, stay, (Unit(ids["fam"], party),)), ttl_seconds=60)
    assert hold.total_cents == expected
    line = await conn.fetchrow("SELECT * FROM hold_units WHERE hold_id = $1", hold.id)
    assert (line["adults"], tuple(line["children_ages"]), line["total_cents"]) == (
        party.adults,
        party.children_ages,
        expected,
    )
    await cancel_hold(conn, hold.id, "test")


async def test_each_night_prices_with_its_own_extra(conn: asyncpg.Connection) -> None:
    """A stay over nights whose rate and extra differ adds up each night's price."""
    season = SeasonSpec(ODD_NIGHT, ODD_NIGHT, None, {"fam": {"rate_cents": 41_000, **ODD["fam"]}})
    prop, ids = await _inn(conn, _spec((season,)))
    party = Party(3, (7,))
    stay = _stay(9, 3, party)
    (option,) = await quote(conn, prop, stay, party, today=START)
    each = RATE + EXTRA + 5_000
    assert [n.rate_cents for n in option.nights] == [each, 41_000 + 10_001 + 5_001, each]
    hold = await create_hold(conn, _hold(prop, stay, (Unit(ids["fam"], party),)), ttl_seconds=60)
    assert hold.total_cents == option.total_cents == 2 * each + 56_002


@pytest.mark.parametrize(
    "party",
    [
        Party(4),  # above max_adults (3)
        Party(3, (12,)),  # a child older than every band counts as an adult
        Party(3, (2, 2)),  # above max_occupancy (4)
    ],
)
async def test_a_party_the_room_cannot_take_is_refused(
    conn: asyncpg.Connection, party: Party
) -> None:
    """More adults than max_adults, or more guests than max_occupancy: the quote has no
    room for it and create_hold refuses it, writing nothing."""
    prop, ids = await _inn(conn, _spec())
    stay = _stay(0, 2, party)
    with pytest.raises(BadRequest, match="no room hosts"):
        await quote(conn, prop, stay, party, today=START)
    with pytest.raises(BadRequest, match="does not fit"):
        await create_hold(conn, _hold(prop, stay, (Unit(ids["fam"], party),)), ttl_seconds=60)
    assert await conn.fetchval("SELECT count(*) FROM holds") == 0


def _season(first: int, last: int, **values: int | bool) -> SeasonSpec:
    return SeasonSpec(
        START + dt.timedelta(days=first), START + dt.timedelta(days=last), None, {"fam": values}
    )


RULES = (
    _season(10, 12, min_stay=3),
    _season(15, 15, max_stay=2),
    _season(18, 18, closed_to_arrival=True),
    _season(22, 22, closed_to_departure=True),
    _season(25, 25, stop_sell=True),
)


@pytest.mark.parametrize(
    ("first", "nights", "rule", "on", "bound"),
    [
        (10, 2, "min_stay", 10, 3),
        (12, 1, "min_stay", 12, 3),
        (15, 3, "max_stay", 15, 2),
        (18, 1, "closed_to_arrival", 18, None),
        (20, 2, "closed_to_departure", 22, None),
        (24, 2, "stop_sell", 25, None),
    ],
)
async def test_each_stay_rule_refuses_the_hold_with_its_own_error(
    conn: asyncpg.Connection, first: int, nights: int, rule: str, on: int, bound: int | None
) -> None:
    """create_hold refuses a stay a rule forbids, naming the rule and the date that sets it,
    and writes nothing; the quote offers nothing for it, and says which rule (stop sell is
    simply not for sale)."""
    prop, ids = await _inn(conn, _spec(RULES))
    party = Party(2)
    stay = _stay(first, nights, party)
    with pytest.raises(StayRuleBroken) as refused:
        await create_hold(conn, _hold(prop, stay, (Unit(ids["fam"], party),)), ttl_seconds=60)
    assert refused.value.code == rule
    assert refused.value.on == START + dt.timedelta(days=on)
    assert await conn.fetchval("SELECT count(*) FROM holds") == 0
    assert await conn.fetchval("SELECT sum(inv_held) FROM ari_days") == 0
    assert await quote(conn, prop, stay, party, today=START) == []
    if rule == "stop_sell":
        assert await offers(conn, prop, stay, party, today=START) == []
    else:
        with pytest.raises(StayRuleBroken) as explained:
            await offers(conn, prop, stay, party, today=START)
        assert (explained.value.code, explained.value.bound) == (rule, bound)


@pytest.mark.parametrize(
    ("first", "nights"),
    [
        (9, 2),  # arrives the day before the minimum stay's season: not bound by it
        (10, 3),
        (11, 4),
        (14, 2),  # the max stay binds arrivals on its date only
        (15, 2),
        (17, 3),  # through the day closed to arrival
        (20, 3),  # through the day closed to departure
        (29, 1),  # checks out on the calendar's last date
    ],
)
async def test_stays_the_rules_allow_are_held(
    conn: asyncpg.Connection, first: int, nights: int
) -> None:
    prop, ids = await _inn(conn, _spec(RULES))
    party = Party(2)
    stay = _stay(first, nights, party)
    assert [o.code for o in await quote(conn, prop, stay, party, today=START)] == ["fam"]
    hold = await create_hold(conn, _hold(prop, stay, (Unit(ids["fam"], party),)), ttl_seconds=60)
    assert hold.total_cents == RATE * nights


async def test_a_checkout_beyond_the_calendar_is_unavailable(conn: asyncpg.Connection) -> None:
    """Every night is in the calendar, but the check-out morning is not: unavailable."""
    prop, ids = await _inn(conn, _spec(days=30))
    party = Party(2)
    stay = _stay(30, 1, party)  # the calendar's last date is START + 30
    with pytest.raises(NothingAvailable) as refused:
        await create_hold(conn, _hold(prop, stay, (Unit(ids["fam"], party),)), ttl_seconds=60)
    assert refused.value.code == "unavailable"
    assert await quote(conn, prop, stay, party, today=START) == []


async def _nights(conn: asyncpg.Connection, *columns: str) -> dict[dt.date, tuple[object, ...]]:
    query = f"SELECT date, {', '.join(columns)} FROM ari_days ORDER BY date"  # noqa: S608
    rows = await conn.fetch(query)
    return {row["date"]: tuple(row)[1:] for row in rows}


async def test_seasons_and_weekdays_on_import(conn: asyncpg.Connection) -> None:
    """The room type's values, then each season in order (a later one wins, one with
    weekdays only on them), then the overrides."""
    weekend = SeasonSpec(
        START, START + dt.timedelta(days=30), frozenset({4, 5}), {"fam": {"rate_cents": 40_000}}
    )
    seasons = (
        weekend,
        _season(10, 16, rate_cents=50_000, extra_adult_cents=20_000, min_stay=4),
        SeasonSpec(
            START + dt.timedelta(days=12),
            START + dt.timedelta(days=20),
            frozenset({6}),
            {"fam": {"closed_to_arrival": True, "max_stay": 7}},
        ),
    )
    override = OverrideSpec(
        "fam", START + dt.timedelta(days=16), START + dt.timedelta(days=16), 1, 60_000, None
    )
    await _inn(conn, _spec(seasons, overrides=(override,)))
    got = await _nights(
        conn,
        "inv_total",
        "rate_cents",
        "extra_adult_cents",
        "min_stay",
        "max_stay",
        "closed_to_arrival",
    )
    for day, values in got.items():
        i = (day - START).days
        rate = 50_000 if 10 <= i <= 16 else 40_000 if day.weekday() in (4, 5) else RATE
        sunday = 12 <= i <= 20 and day.weekday() == 6
        expected = (
            1 if i == 16 else 3,
            60_000 if i == 16 else rate,
            20_000 if 10 <= i <= 16 else EXTRA,
            4 if 10 <= i <= 16 else None,
            7 if sunday else None,
            sunday,
        )
        assert values == expected, day


async def test_values_set_by_hand_survive_a_reimport(conn: asyncpg.Connection) -> None:
    """`ari set` marks what it changes; an import leaves those values alone (and its own
    changes still land elsewhere) until `--reset-manual`; an unchanged file writes no row."""
    spec = _spec()
    prop, _ = await _inn(conn, spec)
    friday = next(
        START + dt.timedelta(days=i)
        for i in range(7)
        if (START + dt.timedelta(days=i)).weekday() == 4
    )
    changed = await set_ari(
        conn,
        property_code=prop.code,
        room_type_code="fam",
        start=START,
        end=START + dt.timedelta(days=13),
        change=AriChange(rate_cents=45_000, min_stay=2),
        weekdays=frozenset({4}),
    )
    assert changed == 2
    manual = await conn.fetch("SELECT date, manual FROM ari_days WHERE manual <> '{}'")
    assert {r["date"]: r["manual"] for r in manual} == {
        friday: ["min_stay", "rate_cents"],
        friday + dt.timedelta(days=7): ["min_stay", "rate_cents"],
    }
    before = await _nights(conn, "xmin::text")
    again = await import_property(conn, spec)
    assert (again.ari_inserted, again.ari_updated) == (0, 0)
    assert await _nights(conn, "xmin::text") == before

    dearer = _spec(rooms=(RoomTypeSpec(**{**vars(FAM), "rate_cents": 33_000}),))
    result = await import_property(conn, dearer)
    assert result.ari_updated == 31 - 2
    rates = await _nights(conn, "rate_cents", "min_stay")
    assert rates[friday] == (45_000, 2) and rates[START] == (33_000, None)

    reset = await import_property(conn, dearer, reset_manual=True)
    assert reset.ari_updated == 2
    rates = await _nights(conn, "rate_cents", "min_stay", "manual")
    assert rates[friday] == (33_000, None, [])


async def test_ari_set_changes_each_value_and_clears_rules(conn: asyncpg.Connection) -> None:
    """Every value `ari set` takes lands on the nights asked for; 0 clears a length rule;
    a max stay below the min stay is a clear error that changes nothing."""
    prop, _ = await _inn(conn, _spec())
    where = {"property_code": prop.code, "room_type_code": "fam", "start": START, "end": START}
    change = AriChange(
        inv_total=2,
        rate_cents=31_000,
        extra_adult_cents=11_000,
        min_stay=2,
        max_stay=5,
        closed_to_arrival=True,
        closed_to_departure=True,
        stop_sell=True,
    )
    assert await set_ari(conn, **where, change=change) == 1  # type: ignore[arg-type]
    columns = (
        "inv_total",
        "rate_cents",
        "extra_adult_cents",
        "min_stay",
        "max_stay",
        "closed_to_arrival",
        "closed_to_departure",
        "stop_sell",
    )
    assert (await _nights(conn, *columns))[START] == (2, 31_000, 11_000, 2, 5, True, True, True)
    assert await set_ari(conn, **where, change=AriChange(min_stay=0, max_stay=0)) == 1  # type: ignore[arg-type]
    assert (await _nights(conn, "min_stay", "max_stay"))[START] == (None, None)
    await set_ari(conn, **where, change=AriChange(min_stay=4))  # type: ignore[arg-type]
    with pytest.raises(BadRequest, match="max stay"):
        await set_ari(conn, **where, change=AriChange(max_stay=3))  # type: ignore[arg-type]
    assert (await _nights(conn, "min_stay", "max_stay"))[START] == (4, None)
    with pytest.raises(BadRequest, match="weekdays"):
        await set_ari(
            conn,
            **where,
            change=AriChange(min_stay=1),
            weekdays=frozenset({(START.weekday() + 1) % 7}),
        )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["seasons"][0].update(weekdays=["fri", "sex"]), "seasons[0].weekdays"),
        (lambda d: d["seasons"][0].update(room_types={"suite": {}}), "'suite' is not one of"),
        (
            lambda d: d["seasons"][0]["room_types"]["fam"].update(price=1),
            "seasons[0].room_types.fam",
        ),
        (
            lambda d: d["seasons"][0]["room_types"]["fam"].update(min_stay=0),
            "min_stay must be at least 1",
        ),
        (lambda d: d["seasons"][0].update(to="2031-02-01"), "seasons[0].to is before from"),
        (lambda d: d["children"].append({"max_age": 3, "percent": 10}), "increasing max_age"),
        (lambda d: d["children"][0].update(percent=101), "children[0]."),
        (lambda d: d["room_types"][0].update(base_occupancy=5), "base_occupancy must be between"),
        (lambda d: d["room_types"][0].update(max_adults=0), "max_adults must be between"),
    ],
)
def test_property_file_rates_are_validated(change, message) -> None:  # type: ignore[no-untyped-def]
    data = {
        "code": "x",
        "name": "X",
        "timezone": "America/Sao_Paulo",
        "currency": "BRL",
        "children": [{"max_age": 5, "percent": 0}, {"max_age": 11, "percent": 50}],
        "room_types": [
            {
                "code": "fam",
                "name": "F",
                "max_occupancy": 4,
                "units": 1,
                "rate_cents": 1,
                "base_occupancy": 2,
                "extra_adult_cents": 5,
                "max_adults": 3,
            }
        ],
        "seasons": [
            {
                "from": "2031-03-01",
                "to": "2031-03-05",
                "weekdays": ["fri"],
                "room_types": {"fam": {"rate_cents": 2, "min_stay": 2}},
            }
        ],
    }
    parse_property(data)
    change(data)
    with pytest.raises(BadRequest, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_property(data)


def test_ari_set_flags_and_reset_manual_as_commands(db_url: str) -> None:
    """`ari set --weekdays … --rate-cents … --min-stay … --closed-to-arrival` changes only
    those days and marks the values; `property import` keeps them, `--reset-manual`
    replaces them; a weekday that does not exist is a usage error (exit 2), a max stay
    below the min stay a clear one (exit 1)."""
    env = app_env(
        DATABASE_URL=db_url,
        PII_KEY=SERVE_ENV["PII_KEY"],
        CONTACT_HASH_KEY=SERVE_ENV["CONTACT_HASH_KEY"],
        ICAL_SECRET="test-ical-secret",
    )

    def last(*args: str) -> dict[str, object]:
        done = run_cli(*args, env=env)
        assert "Traceback" not in done.stdout + done.stderr
        return {"exit": done.returncode, **orjson.loads(done.stdout.splitlines()[-1])}

    assert last("property", "import", str(SAMPLE_PROPERTY))["exit"] == 0
    start, end = sample_stay(6, ahead=60)  # a week no season's stay rule touches
    weekend = [start + dt.timedelta(days=i) for i in range(7)]
    weekend = [d for d in weekend if d.weekday() in (4, 5)]
    where = ["--property", "pousada-mare-alta", "--room-type", "standard"]
    where += ["--from", start.isoformat(), "--to", end.isoformat()]
    changed = last(
        "ari", "set", *where, "--weekdays", "fri,sat", "--rate-cents", "41000",
        "--min-stay", "2", "--closed-to-arrival",
    )  # fmt: skip
    assert changed == {"exit": 0, "nights_changed": 2}

    def nights() -> dict[dt.date, tuple[object, ...]]:
        with psycopg.connect(db_url) as pg:
            rows = pg.execute(
                "SELECT a.date, a.rate_cents, a.min_stay, a.closed_to_arrival, a.manual"
                " FROM ari_days a JOIN room_types r ON r.id = a.room_type_id"
                " WHERE r.code = 'standard' AND a.date BETWEEN %s AND %s",
                (start, end),
            ).fetchall()
        return {row[0]: row[1:] for row in rows}

    marked = ["closed_to_arrival", "min_stay", "rate_cents"]
    assert {d: v for d, v in nights().items() if v[3]} == dict.fromkeys(
        weekend, (41000, 2, True, marked)
    )
    again = last("property", "import", str(SAMPLE_PROPERTY))
    assert (again["ari_inserted"], again["ari_updated"]) == (0, 0)
    reset = last("property", "import", str(SAMPLE_PROPERTY), "--reset-manual")
    assert reset["ari_updated"] == 2
    assert [nights()[d] for d in weekend] == [(39000, None, False, [])] * 2
    assert (
        run_cli(
            "ari", "set", *where, "--weekdays", "fri,sab", "--min-stay", "2", env=env
        ).returncode
        == 2
    )
    last_min = last("ari", "set", *where, "--min-stay", "3")
    assert last_min["exit"] == 0
    refused = last("ari", "set", *where, "--max-stay", "2")
    assert refused["exit"] == 1 and refused["error"] == "bad_request"


async def test_a_rate_changed_while_the_hold_waits_is_charged_as_locked(
    conn: asyncpg.Connection, db_url: str
) -> None:
    """create_hold prices from a plain read, then claims; a rate changed in between (here
    by a transaction holding the night's lock while the hold reads) is what the hold, its
    line and its reservation's line charge: the price of the rows it locked."""
    prop, ids = await _inn(conn, _spec())
    party = Party(2, (8,))
    stay = _stay(3, 2, party)
    async with connections(db_url, 2) as (rival, holder):
        night = START + dt.timedelta(days=4)
        lock = rival.transaction()
        await lock.start()
        await rival.execute(
            "SELECT 1 FROM ari_days WHERE room_type_id = $1 AND date = $2 FOR UPDATE",
            ids["fam"],
            night,
        )
        request = _hold(prop, stay, (Unit(ids["fam"], party),))
        hold = asyncio.ensure_future(create_hold(holder, request, ttl_seconds=60))

        pid = holder.get_server_pid()

        async def waiting() -> bool:  # the hold has read, written, and waits for the night
            query = "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1"
            return bool(await conn.fetchval(query, pid))

        await eventually(waiting, within=1.5)
        await rival.execute(
            "UPDATE ari_days SET rate_cents = 50000, extra_adult_cents = 20000"
            " WHERE room_type_id = $1 AND date = $2",
            ids["fam"],
            night,
        )
        await lock.commit()
        held = await hold
    first, second = RATE + 5_000, 50_000 + 10_000
    assert held.total_cents == first + second
    line = await conn.fetchval("SELECT total_cents FROM hold_units WHERE hold_id = $1", held.id)
    assert line == first + second
    converted = await convert_hold(
        conn, held.id, provider_object_id="cs_test", amount_cents=held.total_cents, currency="brl"
    )
    lines = await conn.fetch(
        "SELECT room_type_id, adults, children_ages, total_cents FROM reservation_units"
        " WHERE reservation_id = $1",
        converted.reservation_id,
    )
    assert [tuple(r) for r in lines] == [(ids["fam"], 2, [8], first + second)]
