"""The property file: what an inn's JSON says, validated, as plain specs. Pure: no I/O.

Errors name the offending field (``room_types[1].rate_cents must be a int``), so a person
fixing the file knows where to look.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.errors import BadRequest


@dataclass(frozen=True)
class CalendarSpec:
    """A channel calendar of the room type: exported to the channel, and imported from it
    when it has an ``import_url`` (which carries the channel's secret)."""

    name: str
    import_url: str | None = None
    units: int = 1  # units one of the channel's events takes


@dataclass(frozen=True)
class RoomTypeSpec:
    code: str
    name: str
    max_occupancy: int
    units: int
    rate_cents: int
    calendars: tuple[CalendarSpec, ...] = ()
    base_occupancy: int | None = None  # guests the rate covers; None: max_occupancy
    extra_adult_cents: int = 0  # each guest beyond base_occupancy, per night
    max_adults: int | None = None  # None: max_occupancy


@dataclass(frozen=True)
class ChildRate:
    """A child of at most ``max_age`` pays ``percent`` of the night's extra_adult_cents."""

    max_age: int
    percent: int


@dataclass(frozen=True)
class CancellationTier:
    """Cancelling at least ``days_before`` days before the check-in date refunds
    ``refund_percent`` of the stay (the tier with the most days that applies)."""

    days_before: int
    refund_percent: int


# What a night of a room type sells under, as a season or ``ari set`` may change it.
NIGHT_FIELDS = (
    "rate_cents",
    "extra_adult_cents",
    "min_stay",
    "max_stay",
    "closed_to_arrival",
    "closed_to_departure",
    "stop_sell",
)
_NIGHT_KINDS: dict[str, type] = {
    "rate_cents": int,
    "extra_adult_cents": int,
    "min_stay": int,
    "max_stay": int,
    "closed_to_arrival": bool,
    "closed_to_departure": bool,
    "stop_sell": bool,
}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order


@dataclass(frozen=True)
class SeasonSpec:
    """Dates (both ends inclusive, only the given weekdays when any) whose nights of each
    named room type take the given values; a later season wins over an earlier one."""

    start: dt.date
    end: dt.date
    weekdays: frozenset[int] | None  # date.weekday() numbers; None: every day
    room_types: dict[str, dict[str, int | bool]]  # code -> the NIGHT_FIELDS it sets


@dataclass(frozen=True)
class OverrideSpec:
    room_type: str
    start: dt.date
    end: dt.date  # inclusive
    total: int | None
    rate_cents: int | None
    stop_sell: bool | None


@dataclass(frozen=True)
class PropertySpec:
    code: str
    name: str
    timezone: str
    currency: str
    whatsapp: dict[str, Any]
    room_types: tuple[RoomTypeSpec, ...]
    overrides: tuple[OverrideSpec, ...]
    start: dt.date | None
    end: dt.date | None  # inclusive
    # whatsapp.staff_numbers in the file: personal numbers, kept out of ``whatsapp``.
    staff_numbers: tuple[str, ...] = ()
    children: tuple[ChildRate, ...] = ()  # by max_age
    cancellation: tuple[CancellationTier, ...] = ()  # by days_before, most first
    seasons: tuple[SeasonSpec, ...] = ()


def _field(data: dict[str, Any], key: str, kind: type, where: str, optional: bool = False) -> Any:
    value: Any = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
        raise BadRequest(f"{where}{key} must be a {kind.__name__}")
    if isinstance(value, str) and not value.strip():
        raise BadRequest(f"{where}{key} must not be empty")
    if isinstance(value, int) and value < 0:
        raise BadRequest(f"{where}{key} must not be negative")
    return value


def _date(value: Any, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{where} must be a YYYY-MM-DD date") from None


_CALENDAR_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def _calendars(raw: Any, where: str) -> tuple[CalendarSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise BadRequest(f"{where} must be a list")
    found = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]."
        if not isinstance(item, dict):
            raise BadRequest(f"{where}[{i}] must be an object")
        name = _field(item, "name", str, at)
        if not _CALENDAR_NAME.match(name):
            raise BadRequest(f"{at}name must be lowercase letters, digits and dashes")
        url = _field(item, "import_url", str, at, optional=True)
        if url is not None and not url.startswith(("https://", "http://")):
            raise BadRequest(f"{at}import_url must be an http(s) URL")
        units = _field(item, "units", int, at, optional=True)
        if units is not None and units < 1:
            raise BadRequest(f"{at}units must be at least 1")
        found.append(CalendarSpec(name, url, units or 1))
    return tuple(found)


def _room_type(raw: dict[str, Any], where: str) -> RoomTypeSpec:
    room = RoomTypeSpec(
        code=_field(raw, "code", str, where),
        name=_field(raw, "name", str, where),
        max_occupancy=_field(raw, "max_occupancy", int, where),
        units=_field(raw, "units", int, where),
        rate_cents=_field(raw, "rate_cents", int, where),
        calendars=_calendars(raw.get("calendars"), f"{where}calendars"),
        base_occupancy=_field(raw, "base_occupancy", int, where, optional=True),
        extra_adult_cents=_field(raw, "extra_adult_cents", int, where, optional=True) or 0,
        max_adults=_field(raw, "max_adults", int, where, optional=True),
    )
    if room.max_occupancy < 1:
        raise BadRequest(f"{where}max_occupancy must be at least 1")
    for key in ("base_occupancy", "max_adults"):
        value = getattr(room, key)
        if value is not None and not 1 <= value <= room.max_occupancy:
            raise BadRequest(f"{where}{key} must be between 1 and max_occupancy")
    return room


def _children(raw: Any) -> tuple[ChildRate, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise BadRequest("children must be a list of {max_age, percent}")
    bands = []
    for i, item in enumerate(raw):
        where = f"children[{i}]."
        if not isinstance(item, dict):
            raise BadRequest(f"children[{i}] must be an object")
        band = ChildRate(_field(item, "max_age", int, where), _field(item, "percent", int, where))
        if band.max_age > 17 or band.percent > 100:
            raise BadRequest(f"{where}max_age must be at most 17 and percent at most 100")
        bands.append(band)
    ages = [band.max_age for band in bands]
    if ages != sorted(set(ages)):
        raise BadRequest("children must be in increasing max_age, each once")
    return tuple(bands)


def _cancellation(raw: Any) -> tuple[CancellationTier, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise BadRequest("cancellation must be a list of {days_before, refund_percent}")
    tiers = []
    for i, item in enumerate(raw):
        where = f"cancellation[{i}]."
        if not isinstance(item, dict):
            raise BadRequest(f"cancellation[{i}] must be an object")
        tier = CancellationTier(
            _field(item, "days_before", int, where), _field(item, "refund_percent", int, where)
        )
        if tier.days_before < 0 or not 0 <= tier.refund_percent <= 100:
            raise BadRequest(f"{where}days_before must be >= 0 and refund_percent 0-100")
        tiers.append(tier)
    days = [tier.days_before for tier in tiers]
    if len(set(days)) != len(days):
        raise BadRequest("cancellation has two tiers with the same days_before")
    return tuple(sorted(tiers, key=lambda tier: -tier.days_before))


def _seasons(raw: Any, codes: list[str]) -> tuple[SeasonSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise BadRequest("seasons must be a list")
    seasons = []
    for i, item in enumerate(raw):
        where = f"seasons[{i}]."
        if not isinstance(item, dict):
            raise BadRequest(f"seasons[{i}] must be an object")
        start, end = _date(item.get("from"), f"{where}from"), _date(item.get("to"), f"{where}to")
        if end < start:
            raise BadRequest(f"{where}to is before from")
        days = item.get("weekdays")
        if days is not None and (
            not isinstance(days, list) or not days or any(d not in WEEKDAYS for d in days)
        ):
            raise BadRequest(f"{where}weekdays must be a list of {', '.join(WEEKDAYS)}")
        rooms = item.get("room_types")
        if not isinstance(rooms, dict) or not rooms:
            raise BadRequest(f"{where}room_types must be an object of room type codes")
        values: dict[str, dict[str, int | bool]] = {}
        for code, fields in rooms.items():
            at = f"{where}room_types.{code}."
            if code not in codes:
                raise BadRequest(f"{where}room_types: {code!r} is not one of {', '.join(codes)}")
            if not isinstance(fields, dict) or set(fields) - set(NIGHT_FIELDS):
                raise BadRequest(f"{at[:-1]} must be an object of {', '.join(NIGHT_FIELDS)}")
            values[code] = {key: _field(fields, key, _NIGHT_KINDS[key], at) for key in fields}
            for key in ("min_stay", "max_stay"):
                if values[code].get(key) == 0:
                    raise BadRequest(f"{at}{key} must be at least 1")
        weekdays = frozenset(WEEKDAYS.index(d) for d in days) if days is not None else None
        seasons.append(SeasonSpec(start, end, weekdays, values))
    return tuple(seasons)


def parse_property(data: Any) -> PropertySpec:
    """Validate a property file's JSON; errors name the offending field."""
    if not isinstance(data, dict):
        raise BadRequest("the property file must hold a JSON object")
    timezone = _field(data, "timezone", str, "")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequest(f"timezone {timezone!r} is not an IANA time zone") from None
    currency = _field(data, "currency", str, "")
    if currency != "BRL":
        raise BadRequest("currency must be BRL")
    whatsapp = data.get("whatsapp", {})
    if not isinstance(whatsapp, dict):
        raise BadRequest("whatsapp must be an object")
    whatsapp = dict(whatsapp)
    staff = whatsapp.pop("staff_numbers", [])
    if not isinstance(staff, list) or not all(
        isinstance(n, str) and 8 <= len(re.sub(r"\D", "", n)) <= 15 for n in staff
    ):
        raise BadRequest("whatsapp.staff_numbers must be a list of phone numbers")
    raw_rooms = data.get("room_types")
    if not isinstance(raw_rooms, list) or not raw_rooms:
        raise BadRequest("room_types must be a non-empty list")
    rooms = []
    for i, raw in enumerate(raw_rooms):
        where = f"room_types[{i}]."
        if not isinstance(raw, dict):
            raise BadRequest(f"room_types[{i}] must be an object")
        rooms.append(_room_type(raw, where))
    codes = [room.code for room in rooms]
    if len(set(codes)) != len(codes):
        raise BadRequest("room_types codes must be unique")
    names = [calendar.name for room in rooms for calendar in room.calendars]
    if len(set(names)) != len(names):
        raise BadRequest("calendar names must be unique within the property")
    overrides = []
    for i, raw in enumerate(data.get("overrides") or []):
        where = f"overrides[{i}]."
        if not isinstance(raw, dict) or raw.get("room_type") not in codes:
            raise BadRequest(f"{where}room_type must name one of {', '.join(codes)}")
        override = OverrideSpec(
            room_type=raw["room_type"],
            start=_date(raw.get("from"), f"{where}from"),
            end=_date(raw.get("to"), f"{where}to"),
            total=_field(raw, "total", int, where, optional=True),
            rate_cents=_field(raw, "rate_cents", int, where, optional=True),
            stop_sell=_field(raw, "stop_sell", bool, where, optional=True),
        )
        if override.end < override.start:
            raise BadRequest(f"{where}to is before from")
        overrides.append(override)
    dates = data.get("dates")
    start = end = None
    if dates is not None:
        if not isinstance(dates, dict):
            raise BadRequest("dates must be an object with from and to")
        start, end = _date(dates.get("from"), "dates.from"), _date(dates.get("to"), "dates.to")
        if end < start:
            raise BadRequest("dates.to is before dates.from")
    return PropertySpec(
        code=_field(data, "code", str, ""),
        name=_field(data, "name", str, ""),
        timezone=timezone,
        currency=currency,
        whatsapp=whatsapp,
        room_types=tuple(rooms),
        overrides=tuple(overrides),
        start=start,
        end=end,
        staff_numbers=tuple(staff),
        children=_children(data.get("children")),
        cancellation=_cancellation(data.get("cancellation")),
        seasons=_seasons(data.get("seasons"), codes),
    )
