"""Property setup: import a property file, change ARI for a date range.

Both are idempotent (the same input twice changes nothing) and never lower a night's
total below what is already held or booked: they lock the nights in (room type,
date) order, check, and refuse with the offending dates. What the file asks of each
night is planned first, without I/O (``plan_ari``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
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

# What a night should be: (total, rate in cents, stop sell).
NightPlan = tuple[int, int, bool]


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


def plan_ari(
    spec: PropertySpec, room_ids: dict[str, int], start: dt.date, end: dt.date
) -> dict[tuple[int, dt.date], NightPlan]:
    """Each night from ``start`` to ``end`` (inclusive) of each room type, as the file wants
    it: the room type's units and rate, then the overrides in order."""
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    wanted: dict[tuple[int, dt.date], NightPlan] = {}
    for room in spec.room_types:
        for day in days:
            wanted[(room_ids[room.code], day)] = (room.units, room.rate_cents, False)
    for override in spec.overrides:
        room_id = room_ids[override.room_type]
        day = override.start
        while day <= override.end:
            if (room_id, day) in wanted:
                total, rate, stop = wanted[(room_id, day)]
                wanted[(room_id, day)] = (
                    total if override.total is None else override.total,
                    rate if override.rate_cents is None else override.rate_cents,
                    stop if override.stop_sell is None else override.stop_sell,
                )
            day += dt.timedelta(days=1)
    return wanted


async def import_property(
    conn: asyncpg.Connection,
    spec: PropertySpec,
    *,
    today: dt.date | None = None,
    pii: PiiKeys | None = None,
    ical_secret: str | None = None,
) -> ImportResult:
    """Create or update the property, its room types, its staff numbers and its ARI in one
    transaction. Staff numbers need ``pii``: they are stored only encrypted."""
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
        room_ids: dict[str, int] = {}
        for room in spec.room_types:
            room_id = await conn.fetchval(
                QUERIES["upsert_room_type"], property_id, room.code, room.name, room.max_occupancy
            )
            room_ids[room.code] = room_id or await conn.fetchval(
                QUERIES["room_type_id"], property_id, room.code
            )
        await import_calendars(conn, property_id, spec, room_ids, pii, ical_secret)
        wanted = plan_ari(spec, room_ids, start, end)
        keys = sorted(wanted)
        room_col = [k[0] for k in keys]
        date_col = [k[1] for k in keys]
        values = [wanted[k] for k in keys]
        locked = await conn.fetch(
            QUERIES["lock_ari_range"], room_col, date_col, [v[0] for v in values]
        )
        _refuse_overcommit(locked, {v: k for k, v in room_ids.items()})
        written = await conn.fetch(
            QUERIES["upsert_ari"],
            property_id,
            room_col,
            date_col,
            [v[0] for v in values],
            [v[1] for v in values],
            [v[2] for v in values],
        )
    inserted = sum(1 for r in written if r["inserted"])
    return ImportResult(
        property_id=property_id,
        room_types=len(room_ids),
        ari_inserted=inserted,
        ari_updated=len(written) - inserted,
    )


async def set_ari(
    conn: asyncpg.Connection,
    *,
    property_code: str,
    room_type_code: str,
    start: dt.date,
    end: dt.date,
    total: int | None = None,
    rate_cents: int | None = None,
    stop_sell: bool | None = None,
) -> int:
    """Change total, rate and/or stop-sell from ``start`` to ``end`` inclusive.

    Returns the number of nights changed. Refuses (naming the dates) a total below
    what is held or booked, and dates the calendar does not have.
    """
    if end < start:
        raise BadRequest("--to is before --from")
    if total is None and rate_cents is None and stop_sell is None:
        raise BadRequest("nothing to change: give --total, --rate-cents or --stop-sell")
    if (total is not None and total < 0) or (rate_cents is not None and rate_cents < 0):
        raise BadRequest("--total and --rate-cents must not be negative")
    async with conn.transaction():
        property_id = await conn.fetchval(QUERIES["property_id"], property_code)
        if property_id is None:
            raise NotFound(f"no property with code {property_code!r}")
        room_id = await conn.fetchval(QUERIES["room_type_id"], property_id, room_type_code)
        if room_id is None:
            raise NotFound(f"no room type {room_type_code!r} in {property_code!r}")
        rows = await conn.fetch(QUERIES["lock_ari_days"], room_id, start, end)
        have = {row["date"] for row in rows}
        missing = [
            start + dt.timedelta(days=i)
            for i in range((end - start).days + 1)
            if start + dt.timedelta(days=i) not in have
        ]
        if missing:
            raise NotFound(f"no calendar for {_format_dates(missing)}: import the property first")
        if total is not None:
            over = [row["date"] for row in rows if total < row["committed"]]
            if over:
                raise Conflict(
                    f"total {total} is below nights already held or booked on {_format_dates(over)}"
                )
        status = await conn.execute(
            QUERIES["update_ari_days"], room_id, start, end, total, rate_cents, stop_sell
        )
    return int(status.split()[-1])
