"""Property setup: import a property file, change ARI for a date range.

Both are idempotent (the same input twice changes nothing) and never lower a night's
total below what is already held or booked: they lock the nights in (room type,
date) order, check, and refuse with the offending dates.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from app.db import QUERIES
from app.errors import BadRequest, Conflict, NotFound
from app.pii import PiiKeys, SealBroken

# How far ahead a property's calendar is opened when the file gives no dates.
DEFAULT_HORIZON_DAYS = 365


@dataclass(frozen=True)
class RoomTypeSpec:
    code: str
    name: str
    max_occupancy: int
    units: int
    rate_cents: int


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


@dataclass(frozen=True)
class ImportResult:
    property_id: int
    room_types: int
    ari_inserted: int
    ari_updated: int


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
        room = RoomTypeSpec(
            code=_field(raw, "code", str, where),
            name=_field(raw, "name", str, where),
            max_occupancy=_field(raw, "max_occupancy", int, where),
            units=_field(raw, "units", int, where),
            rate_cents=_field(raw, "rate_cents", int, where),
        )
        if room.max_occupancy < 1:
            raise BadRequest(f"{where}max_occupancy must be at least 1")
        rooms.append(room)
    codes = [room.code for room in rooms]
    if len(set(codes)) != len(codes):
        raise BadRequest("room_types codes must be unique")
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
    )


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


# An Evolution instance's credentials: stored sealed, never in clear.
_EVOLUTION_SECRETS = ("webhook_secret", "api_key")


async def _whatsapp_settings(
    conn: asyncpg.Connection, spec: PropertySpec, pii: PiiKeys | None
) -> dict[str, Any]:
    """The file's whatsapp object with each Evolution secret replaced by its seal. An
    unchanged secret keeps its stored seal, so re-importing the same file writes nothing."""
    whatsapp = dict(spec.whatsapp)
    secrets = {name: whatsapp.pop(name) for name in _EVOLUTION_SECRETS if name in whatsapp}
    if not secrets:
        return whatsapp
    if pii is None:
        raise BadRequest("importing Evolution credentials needs PII_KEY and CONTACT_HASH_KEY")
    stored = await conn.fetchval(QUERIES["property_whatsapp_settings"], spec.code) or {}
    for name, value in secrets.items():
        purpose = f"evolution:{name}"
        seal = stored.get(f"{name}_sealed")
        try:
            unchanged = seal is not None and pii.unseal(seal, purpose) == value
        except SealBroken:
            unchanged = False
        whatsapp[f"{name}_sealed"] = seal if unchanged else pii.seal(str(value), purpose)
    return whatsapp


async def import_property(
    conn: asyncpg.Connection,
    spec: PropertySpec,
    *,
    today: dt.date | None = None,
    pii: PiiKeys | None = None,
) -> ImportResult:
    """Create or update the property, its room types, its staff numbers and its ARI in one
    transaction. Staff numbers need ``pii``: they are stored only encrypted."""
    if spec.staff_numbers and pii is None:
        raise BadRequest("importing staff numbers needs PII_KEY and CONTACT_HASH_KEY")
    start = spec.start or today or dt.datetime.now(ZoneInfo(spec.timezone)).date()
    end = spec.end or start + dt.timedelta(days=DEFAULT_HORIZON_DAYS - 1)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    whatsapp_id = spec.whatsapp.get("phone_number_id")
    async with conn.transaction():
        settings = {"whatsapp": await _whatsapp_settings(conn, spec, pii)}
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
        staff_hashes = []
        for number in spec.staff_numbers:
            assert pii is not None
            digits = re.sub(r"\D", "", number)  # as WhatsApp writes numbers: "5548…"
            staff_hashes.append(pii.contact_hash(digits))
            await conn.execute(
                QUERIES["upsert_contact"], staff_hashes[-1], pii.encrypt(digits, "phone")
            )
        await conn.execute(QUERIES["replace_staff_numbers"], property_id, staff_hashes)
        room_ids: dict[str, int] = {}
        for room in spec.room_types:
            room_id = await conn.fetchval(
                QUERIES["upsert_room_type"], property_id, room.code, room.name, room.max_occupancy
            )
            room_ids[room.code] = room_id or await conn.fetchval(
                QUERIES["room_type_id"], property_id, room.code
            )
        wanted: dict[tuple[int, dt.date], tuple[int, int, bool]] = {}
        for room in sorted(spec.room_types, key=lambda r: room_ids[r.code]):
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
