"""Channel sync end to end: a channel's feed (a fake Airbnb, and real published Airbnb and
Booking.com exports) applied through the worker's task, our feed fetched from the public
role, conflicts, echoes and a race for the last unit."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import icalendar
import orjson
import pytest
import vobject

from app.backoffice.blocks import block_units, unblock_units
from app.backoffice.cancel import cancel_reservation
from app.backoffice.runner import Scope
from app.channels.tokens import export_token
from app.dev.fake_channel import FakeChannel
from app.dev.postgres import free_port
from app.errors import NothingAvailable
from app.inventory.holds import create_hold
from app.inventory.properties import Property, get_property
from app.inventory.property_file import CalendarSpec, PropertySpec, RoomTypeSpec
from app.inventory.quote import quote
from app.inventory.setup import import_property
from app.inventory.stay import Stay
from app.ops.checks import run_check
from app.pii import pii_keys
from tests.e2e.conftest import Stack, running_stack, worker_task
from tests.e2e.test_commands import _env
from tests.support import connections, eventually, hold_request, run_cli

ICAL_SECRET = "test-ical-secret"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ical"
TZ = ZoneInfo("America/Sao_Paulo")
STAFF = "+55 48 90000-0009"


@dataclass
class Inn:
    property: Property
    room_type_id: int
    today: dt.date
    calendars: dict[str, int]  # name -> id

    def night(self, offset: int) -> dt.date:
        return self.today + dt.timedelta(days=offset)

    def token(self, name: str, rotation: int = 0) -> str:
        return export_token(ICAL_SECRET, self.property.code, "std", name, rotation)


@pytest.fixture
async def stack(db_url: str) -> AsyncIterator[Stack]:
    """The stack with ENV=dev, so a feed on 127.0.0.1 over http is allowed."""
    async with running_stack(db_url, env="dev") as running:
        yield running


@pytest.fixture
async def channel() -> AsyncIterator[FakeChannel]:
    fake = FakeChannel(free_port())
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


async def make_inn(stack: Stack, channel: FakeChannel, units: int = 1, days: int = 60) -> Inn:
    """Today's inn: one room type 'std' (``units`` rooms) with two calendars, 'airbnb' and
    'booking', both imported from the fake channel, and one staff number."""
    today = dt.datetime.now(TZ).date()
    spec = PropertySpec(
        code="test-inn",
        name="Pousada Teste",
        timezone="America/Sao_Paulo",
        currency="BRL",
        whatsapp={"phone_number_id": "pn-test-inn"},
        room_types=(
            RoomTypeSpec(
                "std",
                "Std",
                2,
                units,
                30000,
                calendars=(
                    CalendarSpec("airbnb", channel.url("airbnb")),
                    CalendarSpec("booking", channel.url("booking")),
                ),
            ),
        ),
        overrides=(),
        start=today,
        end=today + dt.timedelta(days=days - 1),
        staff_numbers=(STAFF,),
    )
    pii = pii_keys(stack.settings)
    async with stack.pool.acquire() as conn:
        await import_property(conn, spec, pii=pii, ical_secret=ICAL_SECRET)
        prop = await get_property(conn, "test-inn")
        room = await conn.fetchval("SELECT id FROM room_types WHERE property_id = $1", prop.id)
        ids = dict(
            await conn.fetch("SELECT name, id FROM calendars WHERE property_id = $1", prop.id)
        )
    return Inn(prop, room, today, ids)


async def sync(stack: Stack, inn: Inn, name: str) -> dict[str, object]:
    return await worker_task(stack, "/tasks/channels/sync", {"calendar_id": inn.calendars[name]})


async def counters(stack: Stack, inn: Inn, first: int, nights: int) -> list[tuple[int, int, int]]:
    rows = await stack.pool.fetch(
        "SELECT inv_held, inv_booked, inv_blocked FROM ari_days"
        " WHERE room_type_id = $1 AND date >= $2 ORDER BY date LIMIT $3",
        inn.room_type_id,
        inn.night(first),
        nights,
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


async def reconcile(stack: Stack) -> None:
    async with stack.pool.acquire() as conn:
        assert await run_check(conn, "reconcile") == []


async def offered(stack: Stack, inn: Inn, first: int, nights: int) -> bool:
    stay = Stay(inn.night(first), inn.night(first + nights), 2)
    async with stack.pool.acquire() as conn:
        return bool(await quote(conn, inn.property, stay, today=inn.today))


async def export(stack: Stack, token: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.public) as http:
        return await http.get(f"/ical/{token}.ics", headers=headers)


def closed_nights(feed: bytes) -> set[dt.date]:
    """Every night the feed's events close, read with icalendar."""
    found = set()
    for event in icalendar.Calendar.from_ical(feed).walk("VEVENT"):
        first, morning = event["DTSTART"].dt, event["DTEND"].dt
        found |= {first + dt.timedelta(days=i) for i in range((morning - first).days)}
    return found


async def book_here(stack: Stack, inn: Inn, first: int, nights: int) -> None:
    """A reservation of ours: a hold, converted as a paid checkout would."""
    request = hold_request(
        inn.property.id,
        Stay(inn.night(first), inn.night(first + nights), 2),
        ((inn.room_type_id, 1),),
        uuid.uuid4().hex,
    )
    async with stack.pool.acquire() as conn:
        hold = await create_hold(conn, request, ttl_seconds=2400)
        await conn.fetchrow(
            "SELECT * FROM convert_hold($1, 'stripe', $2, $3, 'brl', NULL, NULL)",
            hold.id,
            f"cs_{uuid.uuid4().hex}",
            hold.total_cents,
        )


# ---- import ----------------------------------------------------------------------------


async def test_an_imported_booking_blocks_moves_and_releases_its_nights(
    stack: Stack, channel: FakeChannel
) -> None:
    """A booking on the channel blocks exactly its nights and units, and the quote stops
    offering them; moved on the channel, the block moves; removed, the nights come back.
    The calendar reconciles after each step."""
    inn = await make_inn(stack, channel)
    uid = channel.book("airbnb", inn.night(5), inn.night(8))
    assert (await sync(stack, inn, "airbnb"))["outcome"] == "applied"
    assert await counters(stack, inn, 4, 5) == [
        (0, 0, 0),
        (0, 0, 1),
        (0, 0, 1),
        (0, 0, 1),
        (0, 0, 0),
    ]
    assert not await offered(stack, inn, 5, 2) and await offered(stack, inn, 8, 2)
    await reconcile(stack)

    channel.calendars["airbnb"][0].checkin = inn.night(10)
    channel.calendars["airbnb"][0].checkout = inn.night(12)
    assert (await sync(stack, inn, "airbnb"))["changed"] == 1
    assert await counters(stack, inn, 5, 3) == [(0, 0, 0)] * 3
    assert await counters(stack, inn, 10, 2) == [(0, 0, 1)] * 2
    await reconcile(stack)

    assert channel.cancel("airbnb", uid)
    assert (await sync(stack, inn, "airbnb"))["released"] == 1
    assert await stack.pool.fetchval("SELECT sum(inv_blocked) FROM ari_days") == 0
    assert await offered(stack, inn, 10, 2)
    status = await stack.pool.fetchval("SELECT status FROM blocks")
    assert status == "released"
    await reconcile(stack)


async def test_an_unchanged_feed_writes_nothing(stack: Stack, channel: FakeChannel) -> None:
    """Synced twice with the same events (the second time a full GET, not a 304), the feed
    writes no block, block night or night row."""
    inn = await make_inn(stack, channel, units=2)
    channel.book("airbnb", inn.night(3), inn.night(6))
    channel.book("airbnb", inn.night(5), inn.night(9))
    await sync(stack, inn, "airbnb")
    snapshot = (
        "SELECT (SELECT array_agg(xmin::text ORDER BY id) FROM blocks),"
        " (SELECT array_agg(xmin::text ORDER BY block_id, date) FROM block_nights),"
        " (SELECT array_agg(xmin::text ORDER BY id) FROM ari_days)"
    )
    before = await stack.pool.fetchrow(snapshot)
    await stack.pool.execute("UPDATE calendars SET etag = NULL, last_modified = NULL")
    assert (await sync(stack, inn, "airbnb"))["outcome"] == "unchanged"
    assert await stack.pool.fetchrow(snapshot) == before


# ---- export ----------------------------------------------------------------------------


async def test_the_export_shows_runs_per_channel(stack: Stack, channel: FakeChannel) -> None:
    """Our feed to a channel closes every night held, booked or blocked by another channel,
    as runs; nights that channel blocked itself are not echoed back to it. It parses with
    icalendar and with vobject, is text/calendar with an ETag (304 on If-None-Match) and
    max-age; a wrong or rotated-away token is a 404."""
    inn = await make_inn(stack, channel)
    await book_here(stack, inn, 2, 2)  # nights 2, 3
    request = hold_request(
        inn.property.id,
        Stay(inn.night(4), inn.night(5), 2),
        ((inn.room_type_id, 1),),
        "held",
    )
    async with stack.pool.acquire() as conn:
        await create_hold(conn, request, ttl_seconds=2400)  # night 4
    channel.book("airbnb", inn.night(7), inn.night(9))  # nights 7, 8 from Airbnb
    await sync(stack, inn, "airbnb")

    to_booking = await export(stack, inn.token("booking"))
    assert to_booking.status_code == 200
    assert to_booking.headers["content-type"] == "text/calendar; charset=utf-8"
    assert to_booking.headers["cache-control"] == "max-age=300"
    expected = {inn.night(n) for n in (2, 3, 4, 7, 8)}
    assert closed_nights(to_booking.content) == expected
    events = icalendar.Calendar.from_ical(to_booking.content).walk("VEVENT")
    assert len(events) == 2  # two runs: 2-4 and 7-8
    assert all(str(e["UID"]).endswith("@hotelly.ical") for e in events)
    assert {str(e["SUMMARY"]) for e in events} == {"Indisponível"}
    parsed = vobject.readOne(to_booking.text)
    assert {(v.dtstart.value, v.dtend.value) for v in parsed.vevent_list} == {
        (inn.night(2), inn.night(5)),
        (inn.night(7), inn.night(9)),
    }

    to_airbnb = await export(stack, inn.token("airbnb"))
    assert closed_nights(to_airbnb.content) == {inn.night(n) for n in (2, 3, 4)}

    again = await export(
        stack, inn.token("booking"), **{"If-None-Match": to_booking.headers["etag"]}
    )
    assert again.status_code == 304 and not again.content
    assert (await export(stack, "0" * 40)).status_code == 404
    assert (await export(stack, "not-a-token")).status_code == 404


async def test_channels_urls_and_rotate(stack: Stack, channel: FakeChannel) -> None:
    """`channels urls` prints each calendar's export URL; `channels rotate` gives a new one
    and the old URL answers 404; a re-import keeps the rotation."""
    inn = await make_inn(stack, channel)
    env = {**_env(stack), "ICAL_SECRET": ICAL_SECRET}
    code, last = await _cli_with(env, "channels", "urls", "--property", "test-inn")
    assert code == 0 and last == {"property": "test-inn", "calendars": 2}
    code, rotated = await _cli_with(
        env, "channels", "rotate", "--property", "test-inn", "--calendar", "booking"
    )
    assert code == 0 and rotated["rotation"] == 1
    assert (await export(stack, inn.token("booking"))).status_code == 404
    new = re.search(r"/ical/(\w+)\.ics$", rotated["url"])
    assert new is not None and new.group(1) == inn.token("booking", 1)
    assert (await export(stack, new.group(1))).status_code == 200
    await make_inn(stack, channel)  # the same file again
    assert (await export(stack, inn.token("booking", 1))).status_code == 200


async def _cli_with(env: dict[str, str], *args: str) -> tuple[int, dict[str, object]]:
    result = await asyncio.to_thread(run_cli, *args, env=env)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, orjson.loads(result.stdout.strip().splitlines()[-1])


# ---- conflicts -------------------------------------------------------------------------


async def conflicted(stack: Stack) -> int:
    """Blocks with nights they could not take."""
    return int(
        await stack.pool.fetchval("SELECT count(*) FROM blocks WHERE conflict_nights <> '{}'")
    )


async def staff_notices(stack: Stack) -> int:
    return int(
        await stack.pool.fetchval("SELECT count(*) FROM messages WHERE dedupe_key LIKE 'staff:%'")
    )


async def test_a_conflict_takes_what_is_free_tells_the_staff_once_and_resolves(
    stack: Stack, channel: FakeChannel
) -> None:
    """A channel booking over our last unit, sold here: its free nights are taken, the
    sold ones are its conflict, nothing is overbooked; the staff get one notice (naming our
    reservation) however often the sync runs; `ops conflicts` lists it (exit 1). When our
    reservation's nights free up, the next sync takes them and the conflict resolves."""
    inn = await make_inn(stack, channel)
    await book_here(stack, inn, 5, 2)  # nights 5, 6 sold here
    channel.book("airbnb", inn.night(4), inn.night(8))  # nights 4-7 on Airbnb
    first = await sync(stack, inn, "airbnb")
    assert (first["claimed"], first["conflicts"]) == (2, 1)
    assert await counters(stack, inn, 4, 4) == [(0, 0, 1), (0, 1, 0), (0, 1, 0), (0, 0, 1)]
    for _ in range(3):  # the task retried, or the schedule's next runs
        await stack.pool.execute("UPDATE calendars SET etag = NULL")
        assert (await sync(stack, inn, "airbnb"))["outcome"] == "unchanged"
    await eventually(lambda: staff_notices(stack))
    assert await staff_notices(stack) == 1
    conflict = await stack.pool.fetchval(
        "SELECT payload FROM outbox_events WHERE event_type = 'channel.conflict'"
    )
    assert conflict["nights"] == [inn.night(5).isoformat(), inn.night(6).isoformat()]
    async with stack.pool.acquire() as conn:
        [listed] = await run_check(conn, "conflicts")
    code = await stack.pool.fetchval("SELECT code FROM reservations")
    assert listed["reservation_codes"] == [code] and listed["calendar"] == "airbnb"
    await reconcile(stack)

    # The inn cancels our guest's reservation: the nights free up.
    async with stack.pool.acquire() as conn:
        await cancel_reservation(conn, Scope(inn.property), code, execute=True)
    resolved = await sync(stack, inn, "airbnb")
    assert (resolved["claimed"], resolved["resolved"]) == (2, 1)
    assert await counters(stack, inn, 4, 4) == [(0, 0, 1)] * 4
    async with stack.pool.acquire() as conn:
        assert await run_check(conn, "conflicts") == []
    assert await stack.pool.fetchval("SELECT conflict_resolved_at IS NOT NULL FROM blocks")
    await reconcile(stack)


# ---- echoes, with real exports ---------------------------------------------------------


def shifted(name: str, start: dt.date) -> tuple[bytes, list[tuple[dt.date, dt.date, str]]]:
    """A published export with every date moved by the same number of days, so its
    earliest event starts on ``start`` (the rest of the file as published); and its events
    (first night, morning free, summary) after the shift."""
    body = (FIXTURES / name).read_bytes()
    dates = [
        dt.datetime.strptime(d.decode(), "%Y%m%d").date()
        for d in re.findall(rb"VALUE=DATE:(\d{8})", body)
    ]
    shift = start - min(dates)

    def move(match: re.Match[bytes]) -> bytes:
        day = dt.datetime.strptime(match.group(1).decode(), "%Y%m%d").date() + shift
        return f"VALUE=DATE:{day:%Y%m%d}".encode()

    moved = re.sub(rb"VALUE=DATE:(\d{8})", move, body)
    events = [
        (e["DTSTART"].dt, e["DTEND"].dt, str(e["SUMMARY"]))
        for e in icalendar.Calendar.from_ical(moved).walk("VEVENT")
    ]
    return moved, events


@pytest.mark.parametrize(
    ("name", "calendar"),
    [
        ("airbnb_reserved_and_blocked_crlf.ics", "airbnb"),
        ("booking_closed_no_organizer_crlf.ics", "booking"),
    ],
)
async def test_a_channel_echoing_our_feed_takes_nothing(
    stack: Stack, channel: FakeChannel, name: str, calendar: str
) -> None:
    """A real Airbnb or Booking.com export whose closed nights ("Airbnb (Not available)",
    "CLOSED - Not available") are the nights our feed had shown that channel closed: stored
    as echoes, taking nothing, no conflict, no notice. Airbnb's reservations ("Reserved")
    still take their units."""
    inn = await make_inn(stack, channel, units=1, days=366)
    body, published = shifted(name, inn.night(1))
    events = [e for e in published if e[0] < inn.night(365)]  # past the horizon: not read
    closed = [(a, b) for a, b, summary in events if summary != "Reserved"]
    for first, morning in closed:  # what made our feed close them: the inn closed the room
        await stack.pool.execute(
            "UPDATE ari_days SET inv_total = 0 WHERE room_type_id = $1 AND date >= $2"
            " AND date < $3",
            inn.room_type_id,
            first,
            morning,
        )
    assert (await export(stack, inn.token(calendar))).status_code == 200  # the channel fetched it
    channel.serve_raw(calendar, body)
    result = await sync(stack, inn, calendar)
    assert result["outcome"] == "applied" and "conflicts" not in result, result
    statuses = await stack.pool.fetch("SELECT status, count(*) FROM blocks GROUP BY status")
    reserved = len(events) - len(closed)
    assert dict(statuses) == {"echo": len(closed), **({"active": reserved} if reserved else {})}
    assert (
        await stack.pool.fetchval("SELECT count(*) FROM blocks WHERE conflict_nights <> '{}'") == 0
    )
    assert await staff_notices(stack) == 0
    await reconcile(stack)


async def test_closed_nights_our_feed_never_showed_are_a_conflict(
    stack: Stack, channel: FakeChannel
) -> None:
    """Booking.com writes its own bookings as "CLOSED - Not available" too: closed nights
    over a sale of ours that the channel had not yet seen in our feed (both sold inside the
    sync window) are a conflict, not an echo."""
    inn = await make_inn(stack, channel)
    assert (await export(stack, inn.token("booking"))).status_code == 200  # all free then
    await book_here(stack, inn, 3, 2)
    body = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
        "PRODID:-//admin.booking.com\\\\\\, b.v.//NONSGML v1.0//EN\r\n"
        "BEGIN:VEVENT\r\nDTSTAMP:20260809T075542Z\r\n"
        f"DTSTART;VALUE=DATE:{inn.night(3):%Y%m%d}\r\nDTEND;VALUE=DATE:{inn.night(5):%Y%m%d}\r\n"
        "UID:e927afc01f6b8d7001fbd73485479170@booking.com\r\nSUMMARY:CLOSED - Not available\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()
    channel.serve_raw("booking", body)
    assert (await sync(stack, inn, "booking"))["conflicts"] == 1


# ---- a race for the last unit ----------------------------------------------------------


async def test_a_sync_racing_fifty_holds_for_the_last_unit(
    stack: Stack, channel: FakeChannel, db_url: str
) -> None:
    """The channel's booking of the last unit is synced while 50 concurrent create_hold
    calls ask for the same nights: counters stay exact, and exactly one side has them —
    one hold and the block in conflict, or the block and every hold refused."""
    inn = await make_inn(stack, channel)
    channel.book("airbnb", inn.night(5), inn.night(7))
    stay = Stay(inn.night(5), inn.night(7), 2)

    async def hold(conn: object) -> bool:
        request = hold_request(inn.property.id, stay, ((inn.room_type_id, 1),), uuid.uuid4().hex)
        try:
            await create_hold(conn, request, ttl_seconds=2400)  # type: ignore[arg-type]
        except NothingAvailable:
            return False
        return True

    async with connections(db_url, 50) as conns:
        outcomes = await asyncio.gather(sync(stack, inn, "airbnb"), *(hold(c) for c in conns))
    holds = sum(1 for won in outcomes[1:] if won)
    block_nights = await stack.pool.fetchval("SELECT count(*) FROM block_nights")
    assert holds + block_nights // 2 == 1 and block_nights in (0, 2), (holds, block_nights)
    conflicts = await stack.pool.fetchval(
        "SELECT count(*) FROM blocks WHERE conflict_nights <> '{}'"
    )
    assert conflicts == holds
    assert await counters(stack, inn, 5, 2) == [(holds, 0, 1 - holds)] * 2
    await reconcile(stack)


async def test_a_block_set_by_hand_closes_every_channels_feed_and_the_quote(
    stack: Stack, channel: FakeChannel
) -> None:
    inn = await make_inn(stack, channel)
    scope = Scope(inn.property)
    async with stack.pool.acquire() as conn:
        await block_units(conn, scope, "std", inn.night(3), inn.night(5), execute=True)
    for name in ("airbnb", "booking"):
        feed = await export(stack, inn.token(name))
        assert closed_nights(feed.content) == {inn.night(3), inn.night(4)}
    assert not await offered(stack, inn, 3, 1)
    async with stack.pool.acquire() as conn:
        await unblock_units(conn, scope, "std", inn.night(3), inn.night(5), execute=True)
    assert closed_nights((await export(stack, inn.token("airbnb"))).content) == set()
    assert await offered(stack, inn, 3, 1)
    await reconcile(stack)
