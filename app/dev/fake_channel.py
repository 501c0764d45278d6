"""A local stand-in for a channel (Airbnb-style) that serves its listings' calendars.

``GET /ical/<name>.ics`` answers as Airbnb's calendar export does: ``text/calendar``, its
PRODID, all-day events with its own UIDs (``…@airbnb.com``), a reservation's SUMMARY
"Reserved" with its reservation link, and "Airbnb (Not available)" for nights closed
without one; with an ETag, so a conditional GET gets a 304. Controls for dev and tests:
``POST /_dev/calendars/<name>/events`` ``{"checkin", "checkout", "closed"?}`` adds an event
(a booking made on the channel) and answers its uid; ``DELETE
/_dev/calendars/<name>/events/<uid>`` removes it (cancelled there). It never logs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import icalendar
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.dev.servers import run_until_signalled, start_in_loop
from app.logging import configure_logging

PRODID = "-//Airbnb Inc//Hosting Calendar 1.0//EN"


@dataclass
class ChannelEvent:
    uid: str
    checkin: dt.date
    checkout: dt.date
    closed: bool = False  # nights closed on the channel, not a reservation


@dataclass
class FakeChannel:
    port: int
    bind: str = "127.0.0.1"
    calendars: dict[str, list[ChannelEvent]] = field(default_factory=dict)
    # A calendar served as these bytes instead (a real channel's export, for tests).
    raw: dict[str, bytes] = field(default_factory=dict)
    fetches: int = 0
    _stop: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        return f"{self.base_url}/ical/{name}.ics"

    def book(self, name: str, checkin: dt.date, checkout: dt.date, closed: bool = False) -> str:
        uid = f"{uuid.uuid4().hex[:12]}-{uuid.uuid4().hex[:32]}@airbnb.com"
        self.calendars.setdefault(name, []).append(ChannelEvent(uid, checkin, checkout, closed))
        return uid

    def cancel(self, name: str, uid: str) -> bool:
        events = self.calendars.get(name, [])
        kept = [event for event in events if event.uid != uid]
        self.calendars[name] = kept
        return len(kept) != len(events)

    def serve_raw(self, name: str, body: bytes) -> None:
        self.raw[name] = body

    def feed(self, name: str) -> bytes:
        if name in self.raw:
            return self.raw[name]
        calendar = icalendar.Calendar()
        calendar.add("prodid", PRODID)
        calendar.add("calscale", "GREGORIAN")
        calendar.add("version", "2.0")
        for event in self.calendars.get(name, []):
            vevent = icalendar.Event()
            vevent.add("dtstamp", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
            vevent.add("dtstart", event.checkin)
            vevent.add("dtend", event.checkout)
            vevent.add("uid", event.uid)
            if event.closed:
                vevent.add("summary", "Airbnb (Not available)")
            else:
                vevent.add("summary", "Reserved")
                code = hashlib.sha256(event.uid.encode()).hexdigest()[:10].upper()
                vevent.add(
                    "description",
                    "Reservation URL: https://www.airbnb.com/hosting/reservations/details/"
                    f"HM{code}\nPhone Number (Last 4 Digits): 0000",
                )
            calendar.add_component(vevent)
        return calendar.to_ical()

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/ical/{name}.ics", self._feed, methods=["GET"]),
                Route("/_dev/calendars/{name}/events", self._book, methods=["POST"]),
                Route("/_dev/calendars/{name}/events/{uid}", self._cancel, methods=["DELETE"]),
            ]
        )

    async def start(self) -> None:
        self._stop = await start_in_loop(self.app(), self.port, self.bind)

    async def stop(self) -> None:
        if self._stop is not None:
            await self._stop()

    async def _feed(self, request: Request) -> Response:
        self.fetches += 1
        body = self.feed(request.path_params["name"])
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        return Response(body, media_type="text/calendar; charset=utf-8", headers={"ETag": etag})

    async def _book(self, request: Request) -> JSONResponse:
        try:
            body = orjson.loads(await request.body())
            checkin = dt.date.fromisoformat(body["checkin"])
            checkout = dt.date.fromisoformat(body["checkout"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return JSONResponse({"error": "checkin and checkout are YYYY-MM-DD"}, 400)
        if checkout <= checkin:
            return JSONResponse({"error": "checkout must be after checkin"}, 400)
        name = request.path_params["name"]
        return JSONResponse({"uid": self.book(name, checkin, checkout, bool(body.get("closed")))})

    async def _cancel(self, request: Request) -> JSONResponse:
        found = self.cancel(request.path_params["name"], request.path_params["uid"])
        return JSONResponse({"cancelled": found}, 200 if found else 404)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local fake channel (iCal feeds) for make run")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12114)
    args = parser.parse_args(argv)
    configure_logging("fake-channel")
    fake = FakeChannel(args.port, bind=args.host)
    asyncio.run(run_until_signalled(fake.start, fake.stop))


if __name__ == "__main__":
    main()
