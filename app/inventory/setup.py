"""Property setup: import a property file, change ARI for a date range.

Both are idempotent (the same input twice changes nothing) and never lower a night's
total below what is already held or booked: they lock the nights whose total changes in
(room type, date) order, check, and refuse with the offending dates. What the file asks
of each night is planned first, without I/O (``plan_ari``).

Each night records which of its values the inn set by hand (``ari_days.manual``): ``ari
set`` marks what it changes, and an import leaves those values alone unless told to
reset them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass, fields, replace
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from app.channels.calendars import import_calendars
from app.db import QUERIES
from app.errors import BadRequest, Conflict, NotFound
from app.inventory.property_file import PropertySpec
from app.messaging.credentials import store_staff_numbers, whatsapp_settings
from app.pii import PiiKeys

# How far ahead a property's calendar is opened when the file gives no dates.
DEFAULT_HORIZON_DAYS = 365


@dataclass(frozen=True)
class NightPlan:
    """What one night of one room type sells under; the fields are ari_days' columns."""

    inv_total: int
    rate_cents: int
    extra_adult_cents: int = 0
    min_stay: int | None = None
    max_stay: int | None = None
    closed_to_arrival: bool = False
    closed_to_departure: bool = False
    stop_sell: bool = False


ARI_FIELDS = tuple(f.name for f in fields(NightPlan))


@dataclass(frozen=True)
class ImportResult:
    property_id: int
    room_types: int
    ari_inserted: int
    ari_updated: int


def _format_dates(dates: Sequence[dt.date]) -> str:
    shown = ", ".join(d.isoformat() for d in dates[:10])
    return shown + (f" and {len(dates) - 10} more" if len(dates) > 10 else "")


def _refuse_overcommit(rows: Sequence[asyncpg.Record], codes: dict[int, str]) -> None:
    over = [r for r in rows if r["wanted"] < r["committed"]]
    if over:
        by_room: dict[str, list[dt.date]] = {}
        for row in over:
            by_room.setdefault(codes[row["room_type_id"]], []).append(row["date"])
        detail = "; ".join(f"{code}: {_format_dates(ds)}" for code, ds in by_room.items())
        raise Conflict(f"total would fall below nights already held or booked ({detail})")


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def plan_ari(
    spec: PropertySpec, room_ids: dict[str, int], start: dt.date, end: dt.date
) -> dict[tuple[int, dt.date], NightPlan]:
    """Each night from ``start`` to ``end`` (inclusive) of each room type, as the file wants
    it: the room type's units and prices, then the seasons in order (on their weekdays),
    then the overrides in order."""
    wanted: dict[tuple[int, dt.date], NightPlan] = {}
    for room in spec.room_types:
        night = NightPlan(room.units, room.rate_cents, room.extra_adult_cents)
        for day in _days(start, end):
            wanted[(room_ids[room.code], day)] = night

    def apply(
        room_id: int,
        first: dt.date,
        last: dt.date,
        changes: Mapping[str, Any],
        weekdays: frozenset[int] | None = None,
    ) -> None:
        for day in _days(max(first, start), min(last, end)):
            if weekdays is None or day.weekday() in weekdays:
                wanted[(room_id, day)] = replace(wanted[(room_id, day)], **changes)

    for season in spec.seasons:
        for code, changes in season.room_types.items():
            apply(room_ids[code], season.start, season.end, changes, season.weekdays)
    for override in spec.overrides:
        given = {
            "inv_total": override.total,
            "rate_cents": override.rate_cents,
            "stop_sell": override.stop_sell,
        }
        apply(
            room_ids[override.room_type],
            override.start,
            override.end,
            {k: v for k, v in given.items() if v is not None},
        )
    return wanted


def _after_import(current: asyncpg.Record, night: NightPlan, reset_manual: bool) -> NightPlan:
    """The night an import leaves: the file's values, except those set by hand."""
    if reset_manual:
        return night
    return replace(night, **{name: current[name] for name in current["manual"]})


async def import_property(
    conn: asyncpg.Connection,
    spec: PropertySpec,
    *,
    today: dt.date | None = None,
    pii: PiiKeys | None = None,
    ical_secret: str | None = None,
    reset_manual: bool = False,
) -> ImportResult:
    """Create or update the property, its room types, its staff numbers and its ARI in one
    transaction. Staff numbers need ``pii``: they are stored only encrypted. Only the
    nights that differ from the file are written; values the inn set by hand are kept
    unless ``reset_manual``."""
    start = spec.start or today or dt.datetime.now(ZoneInfo(spec.timezone)).date()
    end = spec.end or start + dt.timedelta(days=DEFAULT_HORIZON_DAYS - 1)
    whatsapp_id = spec.whatsapp.get("phone_number_id")
    async with conn.transaction():
        whatsapp = await whatsapp_settings(conn, spec.code, spec.whatsapp, pii)
        settings = {"whatsapp": whatsapp}
        row = await conn.fetchrow(
            QUERIES["upsert_property"],
            spec.code,
            spec.name,
            spec.timezone,
            spec.currency,
            whatsapp_id,
            settings,
        )
        property_id = row["id"] if row else await conn.fetchval(QUERIES["property_id"], spec.code)
        await store_staff_numbers(conn, property_id, spec.staff_numbers, pii)
        await conn.execute(
            QUERIES["replace_child_rates"],
            property_id,
            [band.max_age for band in spec.children],
            [band.percent for band in spec.children],
        )
        await conn.execute(
            QUERIES["replace_cancellation_tiers"],
            property_id,
            [tier.days_before for tier in spec.cancellation],
            [tier.refund_percent for tier in spec.cancellation],
        )
        room_ids: dict[str, int] = {}
        for room in spec.room_types:
            room_id = await conn.fetchval(
                QUERIES["upsert_room_type"],
                property_id,
                room.code,
                room.name,
                room.max_occupancy,
                room.base_occupancy or room.max_occupancy,
                room.max_adults or room.max_occupancy,
            )
            room_ids[room.code] = room_id or await conn.fetchval(
                QUERIES["room_type_id"], property_id, room.code
            )
        await import_calendars(conn, property_id, spec, room_ids, pii, ical_secret)
        wanted = plan_ari(spec, room_ids, start, end)
        current = {
            (r["room_type_id"], r["date"]): r
            for r in await conn.fetch(QUERIES["property_nights"], property_id, start, end)
        }
        changed = sorted(
            key
            for key, night in wanted.items()
            if key not in current
            or astuple(_after_import(current[key], night, reset_manual))
            != tuple(current[key][name] for name in ARI_FIELDS)
            or (reset_manual and current[key]["manual"])
        )
        totals = [
            key
            for key in changed
            if key in current
            and _after_import(current[key], wanted[key], reset_manual).inv_total
            != current[key]["inv_total"]
        ]
        if totals:
            # A concurrent hold may have claimed a night since the read above: the check
            # is made on the locked rows.
            locked = await conn.fetch(
                QUERIES["lock_ari_range"],
                [k[0] for k in totals],
                [k[1] for k in totals],
                [wanted[k].inv_total for k in totals],
                reset_manual,
            )
            _refuse_overcommit(locked, {v: k for k, v in room_ids.items()})
        columns = [[getattr(wanted[k], name) for k in changed] for name in ARI_FIELDS]
        try:
            written = await conn.fetch(
                QUERIES["upsert_ari"],
                property_id,
                [k[0] for k in changed],
                [k[1] for k in changed],
                *columns,
                reset_manual,
            )
        except asyncpg.CheckViolationError:
            raise BadRequest(
                "the file would give a night a max_stay below its min_stay "
                "(with the values set by hand)"
            ) from None
    inserted = sum(1 for r in written if r["inserted"])
    return ImportResult(
        property_id=property_id,
        room_types=len(room_ids),
        ari_inserted=inserted,
        ari_updated=len(written) - inserted,
    )


@dataclass(frozen=True)
class AriChange:
    """What ``ari set`` changes on each night of a range; None keeps the night's value.
    ``min_stay``/``max_stay`` of 0 clear the rule."""

    inv_total: int | None = None
    rate_cents: int | None = None
    extra_adult_cents: int | None = None
    min_stay: int | None = None
    max_stay: int | None = None
    closed_to_arrival: bool | None = None
    closed_to_departure: bool | None = None
    stop_sell: bool | None = None

    def given(self) -> list[str]:
        return [name for name in ARI_FIELDS if getattr(self, name) is not None]


async def set_ari(
    conn: asyncpg.Connection,
    *,
    property_code: str,
    room_type_code: str,
    start: dt.date,
    end: dt.date,
    change: AriChange,
    weekdays: frozenset[int] | None = None,
) -> int:
    """Change the given values from ``start`` to ``end`` inclusive (only on ``weekdays``,
    date.weekday() numbers, when given), and mark them as set by hand.

    Returns the number of nights changed. Refuses (naming the dates) a total below
    what is held or booked, and dates the calendar does not have.
    """
    given = change.given()
    if end < start:
        raise BadRequest("--to is before --from")
    if not given:
        raise BadRequest(
            "nothing to change: give --total, --rate-cents, --extra-adult-cents, --min-stay, "
            "--max-stay, --closed-to-arrival, --closed-to-departure or --stop-sell"
        )
    if any(isinstance(v, int) and not isinstance(v, bool) and v < 0 for v in astuple(change)):
        raise BadRequest("numbers must not be negative")
    days = [d for d in _days(start, end) if weekdays is None or d.weekday() in weekdays]
    if not days:
        raise BadRequest("no date in the range falls on those weekdays")
    async with conn.transaction():
        property_id = await conn.fetchval(QUERIES["property_id"], property_code)
        if property_id is None:
            raise NotFound(f"no property with code {property_code!r}")
        room_id = await conn.fetchval(QUERIES["room_type_id"], property_id, room_type_code)
        if room_id is None:
            raise NotFound(f"no room type {room_type_code!r} in {property_code!r}")
        rows = await conn.fetch(QUERIES["lock_ari_days"], room_id, days)
        have = {row["date"] for row in rows}
        missing = [day for day in days if day not in have]
        if missing:
            raise NotFound(f"no calendar for {_format_dates(missing)}: import the property first")
        if change.inv_total is not None:
            over = [row["date"] for row in rows if change.inv_total < row["committed"]]
            if over:
                raise Conflict(
                    f"total {change.inv_total} is below nights already held or booked on "
                    f"{_format_dates(over)}"
                )
        try:
            status = await conn.execute(
                QUERIES["update_ari_days"], room_id, days, given, *astuple(change)
            )
        except asyncpg.CheckViolationError:
            raise BadRequest("max stay would be below min stay on some of those nights") from None
    return int(status.split()[-1])
