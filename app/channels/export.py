"""Our feed for a channel: one all-day event per run of nights the room type cannot sell.

RFC 5545 through ``icalendar``: ``DTSTART;VALUE=DATE`` the first night, an exclusive
``DTEND`` (the morning the room frees up), a neutral SUMMARY and no guest data ever. UIDs
are stable (the calendar and the run's first night, under our own domain), so a re-fetch
updates an event rather than duplicating it, and an echo of ours is recognised on import.
DTSTAMP is derived from the run too, so an unchanged calendar is byte-for-byte the same
feed (and its ETag the same).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import icalendar

# How far ahead the feed shows the calendar.
HORIZON_DAYS = 365
UID_DOMAIN = "hotelly.ical"
SUMMARY = "Indisponível"
# Rendered feeds kept per process: a channel polls its feed every few minutes, and a feed
# whose runs did not change is served from here.
CACHE_SIZE = 2048

Run = tuple[dt.date, dt.date]  # (first night, morning the room frees up)


@dataclass(frozen=True)
class Feed:
    body: bytes
    etag: str


def uid(calendar_id: int, first_night: dt.date) -> str:
    key = hashlib.sha256(f"{calendar_id}:{first_night.isoformat()}".encode()).hexdigest()
    return f"{key[:24]}@{UID_DOMAIN}"


def render(calendar_id: int, runs: tuple[Run, ...]) -> Feed:
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Hotelly//Channel calendar//PT")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    for first, morning in runs:
        event = icalendar.Event()
        event.add("uid", uid(calendar_id, first))
        event.add("dtstamp", dt.datetime.combine(first, dt.time(), dt.UTC))
        event.add("dtstart", first)
        event.add("dtend", morning)
        event.add("summary", SUMMARY)
        event.add("transp", "OPAQUE")
        calendar.add_component(event)
    body = calendar.to_ical()
    return Feed(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


class FeedCache:
    """The last feed rendered for each calendar, reused while its runs are the same."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._feeds: OrderedDict[int, tuple[tuple[Run, ...], Feed]] = OrderedDict()

    def feed(self, calendar_id: int, runs: tuple[Run, ...]) -> Feed:
        cached = self._feeds.get(calendar_id)
        if cached is not None and cached[0] == runs:
            self._feeds.move_to_end(calendar_id)
            return cached[1]
        feed = render(calendar_id, runs)
        self._feeds[calendar_id] = (runs, feed)
        self._feeds.move_to_end(calendar_id)
        if len(self._feeds) > self._size:
            self._feeds.popitem(last=False)
        return feed


def nights(runs: tuple[Run, ...]) -> list[dt.date]:
    """Every night the runs close."""
    return [
        first + dt.timedelta(days=i)
        for first, morning in runs
        for i in range((morning - first).days)
    ]
