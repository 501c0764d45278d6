"""Reading a channel's feed into nights: all-day and date-time events, repeats, cancelled,
in progress, past, beyond the horizon, broken ones, our own echoes, and real exports."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest

from app.channels.feed import MAX_EVENTS, parse
from app.channels.fetch import FeedError

TZ = ZoneInfo("America/Sao_Paulo")
TODAY = dt.date(2031, 3, 10)
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ical"


def feed(*events: str) -> bytes:
    body = "".join(f"BEGIN:VEVENT\r\n{e.strip()}\r\nEND:VEVENT\r\n" for e in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\n{body}END:VCALENDAR\r\n".encode()


def nights(body: bytes) -> dict[str, tuple[dt.date, dt.date]]:
    return {e.uid: (e.checkin, e.checkout) for e in parse(body, TZ, TODAY).events}


def test_all_day_events_take_their_nights_and_a_missing_end_is_one_night() -> None:
    """DTSTART;VALUE=DATE to the day before DTEND; without DTEND, one night."""
    body = feed(
        "UID:a\r\nDTSTART;VALUE=DATE:20310315\r\nDTEND;VALUE=DATE:20310318",
        "UID:b\r\nDTSTART;VALUE=DATE:20310320",
    )
    assert nights(body) == {
        "a": (dt.date(2031, 3, 15), dt.date(2031, 3, 18)),
        "b": (dt.date(2031, 3, 20), dt.date(2031, 3, 21)),
    }


def test_date_time_events_use_the_inns_local_dates_and_take_a_night_at_least() -> None:
    """A date-time event takes the local dates of its start and end (the inn's timezone:
    02:00Z is still the day before in São Paulo); a same-day one takes one night."""
    body = feed(
        "UID:t\r\nDTSTART:20310315T170000Z\r\nDTEND:20310318T020000Z",
        "UID:s\r\nDTSTART:20310320T140000Z\r\nDTEND:20310320T160000Z",
    )
    assert nights(body) == {
        "t": (dt.date(2031, 3, 15), dt.date(2031, 3, 17)),
        "s": (dt.date(2031, 3, 20), dt.date(2031, 3, 21)),
    }


def test_repeats_cancelled_past_in_progress_and_the_horizon() -> None:
    """An RRULE is each occurrence (its own uid); STATUS:CANCELLED is no event; a past one
    takes nothing; one in progress takes from today; one crossing the horizon keeps the
    nights inside it."""
    body = feed(
        "UID:r\r\nDTSTART;VALUE=DATE:20310401\r\nDTEND;VALUE=DATE:20310403\r\n"
        "RRULE:FREQ=WEEKLY;COUNT=3",
        "UID:c\r\nSTATUS:CANCELLED\r\nDTSTART;VALUE=DATE:20310315\r\nDTEND;VALUE=DATE:20310317",
        "UID:p\r\nDTSTART;VALUE=DATE:20310301\r\nDTEND;VALUE=DATE:20310305",
        "UID:i\r\nDTSTART;VALUE=DATE:20310305\r\nDTEND;VALUE=DATE:20310313",
        "UID:h\r\nDTSTART;VALUE=DATE:20320305\r\nDTEND;VALUE=DATE:20320320",
    )
    found = nights(body)
    assert found["r/2031-04-01"] == (dt.date(2031, 4, 1), dt.date(2031, 4, 3))
    assert found["r/2031-04-15"] == (dt.date(2031, 4, 15), dt.date(2031, 4, 17))
    assert found["i"] == (TODAY, dt.date(2031, 3, 13))
    assert found["h"] == (dt.date(2032, 3, 5), TODAY + dt.timedelta(days=365))
    assert "c" not in found and "p" not in found and len(found) == 5


def test_broken_events_are_ignored_and_counted_and_ours_skipped() -> None:
    """An event ending before (or when) it starts is ignored and counted; an event with one
    of our own UIDs (a channel echoing our feed verbatim) is skipped."""
    body = feed(
        "UID:bad\r\nDTSTART;VALUE=DATE:20310320\r\nDTEND;VALUE=DATE:20310318",
        "UID:zero\r\nDTSTART;VALUE=DATE:20310320\r\nDTEND;VALUE=DATE:20310320",
        "UID:abc@hotelly.ical\r\nDTSTART;VALUE=DATE:20310322\r\nDTEND;VALUE=DATE:20310323",
        "UID:ok\r\nDTSTART;VALUE=DATE:20310324\r\nDTEND;VALUE=DATE:20310325",
    )
    parsed = parse(body, TZ, TODAY)
    assert [e.uid for e in parsed.events] == ["ok"] and parsed.ignored == 2


@pytest.mark.parametrize("body", [b"garbage", b"<html><body>Log in</body></html>", b""])
def test_what_is_not_a_calendar_is_a_feed_error(body: bytes) -> None:
    """Garbage, an HTML login page, an empty body: not a calendar."""
    with pytest.raises(FeedError):
        parse(body, TZ, TODAY)


def test_more_than_two_thousand_events_is_a_feed_error() -> None:
    """A feed of 2,001 events is refused whole."""
    events = [
        f"UID:e{n}\r\nDTSTART;VALUE=DATE:20310320\r\nDTEND;VALUE=DATE:20310321"
        for n in range(MAX_EVENTS + 1)
    ]
    with pytest.raises(FeedError):
        parse(feed(*events), TZ, TODAY)


@pytest.mark.parametrize(
    "name",
    [
        "airbnb_reserved_and_blocked_crlf.ics",
        "airbnb_rical_0.8.8_lf.ics",
        "booking_closed_with_organizer_crlf.ics",
    ],
)
def test_real_exports_tell_reservations_from_closed_nights(name: str) -> None:
    """Airbnb's "Reserved" events (with their reservation link) are reservations; "Airbnb
    (Not available)", "Not available" and Booking.com's "CLOSED - Not available" are not;
    every event of the year from the export's first one is read."""
    body = (FIXTURES / name).read_bytes()
    published = icalendar.Calendar.from_ical(body).walk("VEVENT")
    first = min(event["DTSTART"].dt for event in published)
    within = [e for e in published if e["DTSTART"].dt < first + dt.timedelta(days=365)]
    parsed = parse(body, TZ, first)
    assert parsed.ignored == 0 and len(parsed.events) == len(within) > 0
    by_uid = {event.uid: event.reservation for event in parsed.events}
    for event in within:
        assert by_uid[str(event["UID"])] == (str(event["SUMMARY"]) == "Reserved"), event
