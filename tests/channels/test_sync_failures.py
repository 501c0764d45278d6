"""A channel feed that cannot be had, through the worker's sync task over HTTP with a real
OIDC token: the task answers 200 ``feed_error``, the calendar records why (never where),
and no block, block night or ARI row changes; the feed's secret reaches no log. And a
feed that can be had, delivered again and again, changes the calendar once."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import icalendar
import pytest
from pythonjsonlogger.json import JsonFormatter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.channels import fetch, sync
from app.channels.calendars import IMPORT_URL_PURPOSE
from app.dev.postgres import free_port
from app.dev.servers import start_in_loop
from app.pii import pii_keys
from tests.e2e.conftest import Stack, all_logs, running_stack, worker_task  # noqa: F401
from tests.inventory.conftest import make_calendar

SECRET = "SECRET-TOKEN-123"
SYNC = "/tasks/channels/sync"
NOT_PUBLIC = "the feed's address is not a public one"
TZ = "America/Sao_Paulo"
FIVE_MIB = 5 * 1024 * 1024
HTML = (
    b"<!DOCTYPE html><html><head><title>Log in</title></head><body>"
    b"<form method=post action=/login><input name=email><input type=password name=pw>"
    b"</form></body></html>"
)


class Channel:
    """A channel's feed server whose answer the test switches (``mode``)."""

    def __init__(self, checkin: dt.date, checkout: dt.date) -> None:
        self.port = free_port()
        self.mode = "valid"
        self.etag: str | None = None  # sent with a valid feed when set
        self.requests = 0
        self.released = asyncio.Event()  # lets a slow answer finish
        self.checkin, self.checkout = checkin, checkout
        self._stop: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/feed.ics?s={SECRET}"

    def feed(self) -> bytes:
        calendar = icalendar.Calendar()
        calendar.add("prodid", "-//Airbnb Inc//Hosting Calendar 1.0//EN")
        calendar.add("version", "2.0")
        event = icalendar.Event()
        event.add("dtstamp", dt.datetime(2026, 8, 9, 7, 55, 42, tzinfo=dt.UTC))
        event.add("dtstart", self.checkin)
        event.add("dtend", self.checkout)
        event.add("summary", "Reserved")
        event.add("uid", "1418fb94e984-90df2eca44f0144db89d0938835f513a@airbnb.com")
        event.add(
            "description",
            "Reservation URL: https://www.airbnb.com/hosting/reservations/details/HMXXXXXXXX",
        )
        calendar.add_component(event)
        return calendar.to_ical()

    async def _answer(self, request: Request) -> Response:
        self.requests += 1
        mode = self.mode
        if mode == "valid":
            if self.etag is not None and request.headers.get("if-none-match") == self.etag:
                return Response(status_code=304, headers={"ETag": self.etag})
            headers = {"ETag": self.etag} if self.etag else {}
            return Response(self.feed(), media_type="text/calendar", headers=headers)
        if mode == "garbage":
            return Response(bytes(range(256)) * 8, media_type="text/calendar")
        if mode == "html":
            return Response(HTML, media_type="text/html")
        if mode == "huge":
            return Response(b"B" * FIVE_MIB, media_type="text/calendar")
        if mode == "huge_chunked":
            return StreamingResponse(self._chunks(FIVE_MIB), media_type="text/calendar")
        if mode == "slow":
            await self.released.wait()
            return Response(self.feed(), media_type="text/calendar")
        if mode == "trickle":
            return StreamingResponse(self._trickle(), media_type="text/calendar")
        if mode == "loop":
            return Response(status_code=302, headers={"Location": f"/feed.ics?s={SECRET}"})
        return Response(b"nope", status_code=int(mode))  # "404", "500"

    async def _chunks(self, size: int) -> AsyncIterator[bytes]:
        for _ in range(size // 65536):
            yield b"B" * 65536

    async def _trickle(self) -> AsyncIterator[bytes]:
        yield b"BEGIN:VCALENDAR\r\n"
        while not self.released.is_set():
            await asyncio.sleep(0.1)  # the slow server itself: a byte now and then
            yield b" "

    async def start(self) -> None:
        app = Starlette(routes=[Route("/feed.ics", self._answer)])
        self._stop = await start_in_loop(app, self.port)

    async def stop(self) -> None:
        self.released.set()
        await self._stop()


@pytest.fixture
async def dev_stack(db_url: str) -> AsyncIterator[Stack]:
    """The stack with ENV=dev: http feeds on this machine may be fetched."""
    async with running_stack(db_url, env="dev") as running:
        yield running


@pytest.fixture
async def prod_stack(db_url: str) -> AsyncIterator[Stack]:
    """The stack with its default settings (ENV=prod)."""
    async with running_stack(db_url) as running:
        assert running.settings.env == "prod"
        yield running


async def _today(db: asyncpg.Pool | asyncpg.Connection) -> dt.date:
    today: dt.date = await db.fetchval(f"SELECT (now() AT TIME ZONE '{TZ}')::date")
    return today


@pytest.fixture
async def channel(db_url: str) -> AsyncIterator[Channel]:
    """A channel with one reservation, from three to six days from today (the inn's)."""
    connection = await asyncpg.connect(db_url)
    try:
        today = await _today(connection)
    finally:
        await connection.close()
    server = Channel(today + dt.timedelta(days=3), today + dt.timedelta(days=6))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def add_calendar(stack: Stack, url: str) -> int:
    """An inn with one 'std' room for 30 nights from today, and a channel calendar
    importing ``url`` (sealed as the property import seals it)."""
    async with stack.pool.acquire() as conn:
        cal = await make_calendar(
            conn, [("std", 2, 1, 30000)], start=await _today(stack.pool), days=30
        )
        calendar_id: int = await conn.fetchval(
            "INSERT INTO calendars (property_id, room_type_id, name, import_url_sealed,"
            " export_digest) VALUES ($1, $2, 'airbnb', $3, $4) RETURNING id",
            cal.property.id,
            cal.room_type_ids["std"],
            pii_keys(stack.settings).seal(url, IMPORT_URL_PURPOSE),
            uuid.uuid4().hex,
        )
    return calendar_id


async def point(stack: Stack, calendar_id: int, url: str) -> None:
    await stack.pool.execute(
        "UPDATE calendars SET import_url_sealed = $2 WHERE id = $1",
        calendar_id,
        pii_keys(stack.settings).seal(url, IMPORT_URL_PURPOSE),
    )


async def snapshot(stack: Stack, *, xmin: bool) -> dict[str, list[dict[str, Any]]]:
    """Every row of blocks, block_nights and ari_days, in order; with ``xmin``, each row's
    writing transaction too (so an identical rewrite shows)."""
    extra = ", xmin::text AS row_xmin" if xmin else ""
    tables = {
        "blocks": "id",
        "block_nights": "block_id, room_type_id, date",
        "ari_days": "property_id, room_type_id, date",
    }
    return {
        table: [
            dict(row)
            for row in await stack.pool.fetch(f"SELECT *{extra} FROM {table} ORDER BY {order}")  # noqa: S608
        ]
        for table, order in tables.items()
    }


async def health(stack: Stack, calendar_id: int) -> asyncpg.Record:
    row = await stack.pool.fetchrow(
        "SELECT last_error, consecutive_failures, last_success_at, last_attempt_at"
        " FROM calendars WHERE id = $1",
        calendar_id,
    )
    assert row is not None
    return row


def assert_no_url(text: str, port: int) -> None:
    assert SECRET not in text
    assert "feed.ics" not in text
    assert "127.0.0.1" not in text
    assert f":{port}" not in text


# Pinned to WARNING by configure_logging (app/logging.py) in every role and at every
# LOG_LEVEL: their INFO/DEBUG records (httpx's "HTTP Request: GET <url>") are never
# emitted, though all_logs captures them.
PINNED = ("httpx", "httpcore")


def logged(records: list[logging.LogRecord]) -> list[str]:
    """Each record the app's logging would emit, formatted as it would be, with its
    attributes (extra fields included)."""
    formatter = JsonFormatter()
    return [
        f"{formatter.format(r)} {vars(r)!r}"
        for r in records
        if not (r.name.split(".")[0] in PINNED and r.levelno < logging.WARNING)
    ]


FAILURES = [
    ("garbage", "the feed is not a calendar"),
    ("html", "the feed is not a calendar"),
    ("huge", "the feed is larger than 2 MiB"),
    ("huge_chunked", "the feed is larger than 2 MiB"),
    ("slow", "the feed timed out"),
    ("trickle", "the feed timed out"),
    ("404", "the feed answered HTTP 404"),
    ("500", "the feed answered HTTP 500"),
    ("loop", "the feed redirects too many times"),
]


async def test_a_feed_that_cannot_be_had_changes_nothing_and_is_recorded(
    dev_stack: Stack,
    channel: Channel,
    all_logs: pytest.LogCaptureFixture,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a valid sync made the channel's block, each bad answer (garbage, an HTML
    login page, 5 MiB declared or chunked, a server that never answers, one that trickles
    past the deadline, 404, 500, a redirect loop) makes the task answer 200 feed_error;
    the calendar's last_error says why without the URL, consecutive_failures counts up,
    and blocks, block_nights and ari_days are untouched (row for row, xmin included).
    A valid feed again clears the error. The secret is in no log record the app emits."""
    stack = dev_stack
    monkeypatch.setattr(fetch, "TIMEOUT", httpx.Timeout(0.5))
    monkeypatch.setattr(sync, "FETCH_DEADLINE_SECONDS", 1.5)
    calendar_id = await add_calendar(stack, channel.url)

    first = await worker_task(stack, SYNC, {"calendar_id": calendar_id})
    assert first == {"outcome": "applied", "created": 1, "claimed": 3}
    before = await snapshot(stack, xmin=True)
    assert [(b["checkin"], b["checkout"], b["status"]) for b in before["blocks"]] == [
        (channel.checkin, channel.checkout, "active")
    ]
    assert len(before["block_nights"]) == 3
    assert sum(a["inv_blocked"] for a in before["ari_days"]) == 3
    succeeded = (await health(stack, calendar_id))["last_success_at"]

    for failures, (mode, reason) in enumerate(FAILURES, start=1):
        channel.mode = mode
        channel.released.clear()
        seen = channel.requests
        answer = await worker_task(stack, SYNC, {"calendar_id": calendar_id})
        channel.released.set()
        assert answer == {"outcome": "feed_error", "error": reason}, mode
        assert channel.requests > seen, mode  # the feed was asked for, and failed
        row = await health(stack, calendar_id)
        assert row["last_error"] == reason, mode
        assert_no_url(row["last_error"], channel.port)
        assert row["consecutive_failures"] == failures, mode
        assert row["last_success_at"] == succeeded, mode
        assert await snapshot(stack, xmin=True) == before, mode

    channel.mode = "valid"
    again = await worker_task(stack, SYNC, {"calendar_id": calendar_id})
    assert again["outcome"] == "unchanged"
    row = await health(stack, calendar_id)
    assert row["last_error"] is None
    assert row["consecutive_failures"] == 0
    assert row["last_success_at"] > succeeded
    assert await snapshot(stack, xmin=True) == before

    lines = logged(all_logs.records)
    assert sum("channel_sync_failed" in line for line in lines) == len(FAILURES)
    for line in lines:
        assert SECRET not in line
        assert "feed.ics" not in line


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:{port}/feed.ics?s=" + SECRET, "the feed's URL must be https"),
        ("https://127.0.0.1:{port}/feed.ics?s=" + SECRET, NOT_PUBLIC),
        ("https://localhost:{port}/feed.ics?s=" + SECRET, NOT_PUBLIC),
        ("https://169.254.169.254/latest/meta-data?s=" + SECRET, NOT_PUBLIC),
    ],
)
async def test_a_local_feed_is_refused_outside_dev(
    prod_stack: Stack,
    url: str,
    reason: str,
    all_logs: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    """With ENV=prod, a feed on this machine (http, or https to 127.0.0.1 or a name that
    resolves to it) or at the metadata server is refused: 200 feed_error, nothing connects
    to the local listener, nothing but the calendar's health is written, and no log has
    the URL."""
    stack = prod_stack
    connections = 0

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    port = free_port()
    listener = await asyncio.start_server(count, "127.0.0.1", port)
    try:
        calendar_id = await add_calendar(stack, url.format(port=port))
        before = await snapshot(stack, xmin=True)
        answer = await worker_task(stack, SYNC, {"calendar_id": calendar_id})
    finally:
        listener.close()
        await listener.wait_closed()

    assert answer == {"outcome": "feed_error", "error": reason}
    assert connections == 0
    row = await health(stack, calendar_id)
    assert (row["last_error"], row["consecutive_failures"]) == (reason, 1)
    assert row["last_success_at"] is None
    assert await snapshot(stack, xmin=True) == before
    assert before["blocks"] == [] and before["block_nights"] == []
    lines = logged(all_logs.records)
    assert any("channel_sync_failed" in line for line in lines)
    for line in lines:
        assert SECRET not in line
        assert "meta-data" not in line


async def test_a_feed_delivered_three_times_changes_the_calendar_once(
    dev_stack: Stack, channel: Channel
) -> None:
    """The sync task delivered three times for the same feed leaves the state one delivery
    left, and the second and third write no blocks, block_nights or ari_days row (every
    row's xmin unchanged): the usual sync of an unchanged feed answers 'unchanged'."""
    stack = dev_stack
    calendar_id = await add_calendar(stack, channel.url)

    first = await worker_task(stack, SYNC, {"calendar_id": calendar_id})
    once = await snapshot(stack, xmin=False)
    written = await snapshot(stack, xmin=True)
    later = [await worker_task(stack, SYNC, {"calendar_id": calendar_id}) for _ in range(2)]

    assert first["outcome"] == "applied"
    assert [answer["outcome"] for answer in later] == ["unchanged", "unchanged"]
    assert await snapshot(stack, xmin=False) == once
    assert await snapshot(stack, xmin=True) == written
    assert channel.requests == 3


async def test_concurrent_deliveries_of_one_feed_take_its_nights_once(
    dev_stack: Stack, channel: Channel
) -> None:
    """Three deliveries of the same sync at once: one block, its three nights blocked once,
    and every delivery answers 200."""
    stack = dev_stack
    calendar_id = await add_calendar(stack, channel.url)

    answers = await asyncio.gather(
        *(worker_task(stack, SYNC, {"calendar_id": calendar_id}) for _ in range(3))
    )

    assert sorted(a["outcome"] for a in answers) == ["applied", "unchanged", "unchanged"]
    state = await snapshot(stack, xmin=False)
    assert [(b["checkin"], b["checkout"], b["status"]) for b in state["blocks"]] == [
        (channel.checkin, channel.checkout, "active")
    ]
    nights = [channel.checkin + dt.timedelta(days=i) for i in range(3)]
    assert [(n["date"], n["qty"]) for n in state["block_nights"]] == [(d, 1) for d in nights]
    assert [a["date"] for a in state["ari_days"] if a["inv_blocked"]] == nights
    assert all(a["inv_blocked"] == 1 for a in state["ari_days"] if a["date"] in nights)


async def test_an_unchanged_feed_behind_an_etag_writes_no_inventory_row(
    dev_stack: Stack, channel: Channel
) -> None:
    """A channel that answers 304 to the ETag of the last success: 'not_modified', and
    no blocks, block_nights or ari_days row is written."""
    stack = dev_stack
    channel.etag = '"feed-v1"'
    calendar_id = await add_calendar(stack, channel.url)

    first = await worker_task(stack, SYNC, {"calendar_id": calendar_id})
    written = await snapshot(stack, xmin=True)
    second = await worker_task(stack, SYNC, {"calendar_id": calendar_id})

    assert first["outcome"] == "applied"
    assert second == {"outcome": "not_modified"}
    assert await snapshot(stack, xmin=True) == written
    row = await stack.pool.fetchrow(
        "SELECT etag, event_count FROM calendars WHERE id = $1", calendar_id
    )
    assert row is not None and (row["etag"], row["event_count"]) == ('"feed-v1"', 1)
