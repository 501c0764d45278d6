"""Reading a channel's feed into the nights its events take, with ``icalendar`` (and
``recurring-ical-events`` for RRULE, RDATE and EXDATE).

- An all-day event takes the nights from DTSTART to the day before DTEND; a date-time
  event, the nights from the local date (the inn's timezone) of DTSTART to the day before
  the local date of DTEND, at least one; without DTEND, one night.
- STATUS:CANCELLED is no event; a repeating event is each of its occurrences within the
  horizon (each its own uid: ``<UID>/<first night>``).
- Events in progress take their nights from today; past ones nothing; nights beyond the
  horizon are dropped (an event crossing it keeps the nights inside).
- An event whose end is not after its start is ignored and counted; our own events
  (UID ending ``@hotelly.ical``, a channel echoing our feed verbatim) are skipped.
- More than MAX_EVENTS events, or anything that is not a calendar, is a FeedError.

Whether an event is one of the channel's reservations (``reservation``) or only nights it
closed ("Airbnb (Not available)", Booking.com's "CLOSED - Not available"): closed nights
that our own feed showed the channel closed are an echo of it, not a booking (sync.py).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from app.channels.export import HORIZON_DAYS, UID_DOMAIN
from app.channels.fetch import FeedError

MAX_EVENTS = 2000
# What channels write on nights they closed without a booking.
_CLOSED = re.compile(r"not available|unavailable|closed|blocked|indispon|bloquead", re.I)
# What only a reservation carries (Airbnb's reservation link).
_RESERVATION = re.compile(r"reservation url|/reservations/", re.I)


@dataclass(frozen=True)
class Event:
    uid: str
    checkin: dt.date
    checkout: dt.date  # the morning the room frees up
    reservation: bool


@dataclass(frozen=True)
class Parsed:
    events: tuple[Event, ...]
    ignored: int  # events whose end is not after their start


def _day(value: Any, tz: ZoneInfo) -> tuple[dt.date, bool]:
    """The local date of a DTSTART/DTEND value, and whether it was a date-time."""
    if isinstance(value, dt.datetime):
        local = value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)
        return local.date(), True
    if isinstance(value, dt.date):
        return value, False
    raise TypeError("not a date")


def _instant(value: Any) -> dt.datetime:
    """A DTSTART/DTEND value as a comparable instant (floating times and dates as UTC)."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return dt.datetime.combine(value, dt.time(), dt.UTC)


def _ends_after_start(event: icalendar.cal.Component) -> bool:
    start, end = event.get("DTSTART"), event.get("DTEND")
    if start is None:
        return False
    return end is None or _instant(end.dt) > _instant(start.dt)


def _is_reservation(event: icalendar.cal.Component) -> bool:
    summary = str(event.get("SUMMARY", ""))
    description = str(event.get("DESCRIPTION", ""))
    return bool(_RESERVATION.search(description)) or not _CLOSED.search(summary)


def parse(body: bytes, tz: ZoneInfo, today: dt.date) -> Parsed:
    try:
        calendar = icalendar.Calendar.from_ical(body)
    except (ValueError, IndexError, KeyError, TypeError):
        raise FeedError("the feed is not a calendar") from None
    if not isinstance(calendar, icalendar.Calendar) or calendar.name != "VCALENDAR":
        raise FeedError("the feed is not a calendar")
    components = calendar.walk("VEVENT")
    if len(components) > MAX_EVENTS:
        raise FeedError(f"the feed has more than {MAX_EVENTS:,} events")
    bad = [event for event in components if not _ends_after_start(event)]
    repeating = {str(e.get("UID", "")).strip() for e in components if "RRULE" in e or "RDATE" in e}
    for event in bad:  # set aside before expanding: the library would mend them
        calendar.subcomponents.remove(event)
    horizon = today + dt.timedelta(days=HORIZON_DAYS)
    try:
        occurrences = recurring_ical_events.of(calendar).between(today, horizon)
    except (ValueError, TypeError, recurring_ical_events.InvalidCalendar):
        raise FeedError("the feed's events cannot be read") from None
    events: dict[str, Event] = {}
    for occurrence in occurrences:
        uid = str(occurrence.get("UID", "")).strip()
        if not uid or uid.endswith(f"@{UID_DOMAIN}"):
            continue
        if str(occurrence.get("STATUS", "")).upper() == "CANCELLED":
            continue
        first, timed = _day(occurrence["DTSTART"].dt, tz)
        end = occurrence.get("DTEND")
        morning = _day(end.dt, tz)[0] if end is not None else first + dt.timedelta(days=1)
        if timed and morning <= first:
            morning = first + dt.timedelta(days=1)  # a date-time event takes a night
        first, morning = max(first, today), min(morning, horizon)
        if morning <= first:
            continue  # past, or beyond the horizon
        if len(events) >= MAX_EVENTS:
            raise FeedError(f"the feed has more than {MAX_EVENTS:,} events")
        if uid in repeating or uid in events:
            uid = f"{uid}/{first.isoformat()}"
        events[uid] = Event(uid[:255], first, morning, _is_reservation(occurrence))
    return Parsed(tuple(events.values()), len(bad))
