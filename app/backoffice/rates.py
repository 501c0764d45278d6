"""Changing the price or the stay rules of a room type for a range of nights: what
``ari set`` does, audited, the values recorded as set by hand (an import keeps them)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any

import asyncpg

from app.backoffice.runner import Scope, room_type_id, run
from app.db import QUERIES
from app.errors import BadRequest, NotFound
from app.inventory.setup import AriChange, set_ari

COMMAND = "ari.change"


async def change_rates(
    conn: asyncpg.Connection,
    scope: Scope,
    room_type: str,
    checkin: dt.date,
    checkout: dt.date,
    change: AriChange,
    *,
    execute: bool = False,
    expected: str | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """Set the given values on every night from ``checkin`` to the night before
    ``checkout`` (a range as a stay names it)."""
    if checkout <= checkin:
        raise BadRequest("the check-out date must be after the check-in date")
    given = {name: value for name, value in asdict(change).items() if value is not None}
    if not given:
        raise BadRequest("nothing to change")
    room_id = await room_type_id(conn, scope, room_type)
    last = checkout - dt.timedelta(days=1)

    async def plan(conn: asyncpg.Connection) -> dict[str, Any]:
        rows = await conn.fetch(QUERIES["property_nights"], scope.property.id, checkin, last)
        nights = sorted(row["date"] for row in rows if row["room_type_id"] == room_id)
        if len(nights) != (checkout - checkin).days:
            raise NotFound(f"no calendar for every night from {checkin} to {last}")
        return {
            "room_type": room_type,
            "checkin": checkin,
            "checkout": checkout,
            "nights": nights,
            "change": given,
        }

    async def apply(conn: asyncpg.Connection, effect: dict[str, Any]) -> dict[str, Any]:
        changed = await set_ari(
            conn,
            property_code=scope.property.code,
            room_type_code=room_type,
            start=checkin,
            end=last,
            change=change,
        )
        return {**effect, "outcome": "changed", "nights_changed": changed}

    arguments = {"room_type": room_type, "checkin": checkin, "checkout": checkout, **given}
    return await run(
        conn, scope, COMMAND, arguments, plan, apply, execute=execute, expected=expected, key=key
    )
