"""An inn's channel calendars as its property file declares them, and their export URLs.

Importing the file creates or updates each calendar by name and never touches its rotation
number or its sync state; the import URL is stored sealed, and an unchanged URL keeps its
stored seal so a re-import writes nothing.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from app.channels.tokens import digest, export_token, export_url
from app.db import QUERIES
from app.errors import BadRequest, NotFound
from app.inventory.property_file import PropertySpec
from app.pii import PiiKeys, SealBroken

IMPORT_URL_PURPOSE = "channel:import_url"


def _sealed_url(pii: PiiKeys, url: str, stored: str | None) -> str:
    if stored is not None:
        try:
            if pii.unseal(stored, IMPORT_URL_PURPOSE) == url:
                return stored
        except SealBroken:
            pass
    return pii.seal(url, IMPORT_URL_PURPOSE)


async def import_calendars(
    conn: asyncpg.Connection,
    property_id: int,
    spec: PropertySpec,
    room_ids: dict[str, int],
    pii: PiiKeys | None,
    ical_secret: str | None,
) -> None:
    """Each calendar of the file, in the caller's transaction."""
    wanted = [(room, calendar) for room in spec.room_types for calendar in room.calendars]
    if not wanted:
        return
    if ical_secret is None:
        raise BadRequest("importing calendars needs ICAL_SECRET")
    if pii is None and any(calendar.import_url for _, calendar in wanted):
        raise BadRequest("importing calendar URLs needs PII_KEY and CONTACT_HASH_KEY")
    known = {
        row["name"]: row for row in await conn.fetch(QUERIES["property_calendars"], property_id)
    }
    for room, calendar in wanted:
        row = known.get(calendar.name)
        rotation = row["rotation"] if row else 0
        sealed = None
        if calendar.import_url is not None:
            assert pii is not None
            sealed = _sealed_url(
                pii, calendar.import_url, row["import_url_sealed"] if row else None
            )
        token = export_token(ical_secret, spec.code, room.code, calendar.name, rotation)
        await conn.execute(
            QUERIES["upsert_calendar"],
            property_id,
            room_ids[room.code],
            calendar.name,
            sealed,
            calendar.units,
            digest(token),
        )


async def _calendar(conn: asyncpg.Connection, property_code: str) -> tuple[int, list[Any]]:
    property_id = await conn.fetchval(QUERIES["property_id"], property_code)
    if property_id is None:
        raise NotFound(f"no property with code {property_code!r}")
    return property_id, list(await conn.fetch(QUERIES["property_calendars"], property_id))


def _secret(ical_secret: str | None) -> str:
    if ical_secret is None:
        raise BadRequest("export URLs need ICAL_SECRET")
    return ical_secret


async def export_urls(
    conn: asyncpg.Connection, public_url: str, ical_secret: str | None, property_code: str
) -> list[dict[str, Any]]:
    """Every calendar's export URL (what to paste into the channel's calendar import)."""
    secret = _secret(ical_secret)
    _, calendars = await _calendar(conn, property_code)
    return [
        {
            "calendar": row["name"],
            "room_type": row["room_type"],
            "url": export_url(
                public_url,
                export_token(secret, property_code, row["room_type"], row["name"], row["rotation"]),
            ),
        }
        for row in calendars
    ]


async def rotate(
    conn: asyncpg.Connection,
    public_url: str,
    ical_secret: str | None,
    property_code: str,
    calendar_name: str,
) -> dict[str, Any]:
    """A new export URL for the calendar; the old one answers 404 from now on."""
    secret = _secret(ical_secret)
    property_id, calendars = await _calendar(conn, property_code)
    row = next((r for r in calendars if r["name"] == calendar_name), None)
    if row is None:
        raise NotFound(f"no calendar {calendar_name!r} in {property_code!r}")
    rotation = row["rotation"] + 1
    token = export_token(secret, property_code, row["room_type"], calendar_name, rotation)
    await conn.execute(QUERIES["rotate_calendar"], property_id, calendar_name, digest(token))
    return {"calendar": calendar_name, "rotation": rotation, "url": export_url(public_url, token)}
