"""Blocking units by hand (a room in repair, the owner's family) and giving them back.

A manual block is a ``blocks`` row of source ``manual`` owning its nights like a channel's:
the quote, create_hold and the channel feeds see it through ``inv_blocked``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from app.backoffice.runner import Scope, room_type_id, run
from app.db import QUERIES
from app.errors import BadRequest, Conflict, NotFound


def _dates(dates: list[dt.date]) -> str:
    return ", ".join(d.isoformat() for d in dates)


def _range(checkin: dt.date, checkout: dt.date, units: int) -> list[dt.date]:
    if checkout <= checkin:
        raise BadRequest("the check-out date must be after the check-in date")
    if units < 1:
        raise BadRequest("units must be at least 1")
    return [checkin + dt.timedelta(days=i) for i in range((checkout - checkin).days)]


def _missing(wanted: list[dt.date], rows: list[asyncpg.Record]) -> None:
    have = {row["date"] for row in rows}
    missing = [d for d in wanted if d not in have]
    if missing:
        raise NotFound(f"no calendar for {_dates(missing)}")


async def block_units(
    conn: asyncpg.Connection,
    scope: Scope,
    room_type: str,
    checkin: dt.date,
    checkout: dt.date,
    units: int = 1,
    *,
    execute: bool = False,
    expected: str | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """Take ``units`` of the room type off sale for the nights from ``checkin`` to
    ``checkout``; refuses, naming the nights, when that would overbook."""
    wanted = _range(checkin, checkout, units)
    room_id = await room_type_id(conn, scope, room_type)
    arguments = {"room_type": room_type, "checkin": checkin, "checkout": checkout, "units": units}

    async def plan(conn: asyncpg.Connection) -> dict[str, Any]:
        rows = await conn.fetch(QUERIES["ari_nights_to_block"], room_id, checkin, checkout)
        _missing(wanted, rows)
        short = [row["date"] for row in rows if row["free"] < units]
        if short:
            raise Conflict(f"blocking {units} would overbook {_dates(short)}: sold or held")
        return {**arguments, "nights": wanted}

    async def apply(conn: asyncpg.Connection, effect: dict[str, Any]) -> dict[str, Any]:
        block_id = await conn.fetchval(
            QUERIES["insert_manual_block"], scope.property.id, room_id, checkin, checkout, units
        )
        return {**effect, "outcome": "blocked", "block_id": block_id}

    return await run(
        conn,
        scope,
        "block.add",
        arguments,
        plan,
        apply,
        execute=execute,
        expected=expected,
        key=key,
    )


async def unblock_units(
    conn: asyncpg.Connection,
    scope: Scope,
    room_type: str,
    checkin: dt.date,
    checkout: dt.date,
    units: int = 1,
    *,
    execute: bool = False,
    expected: str | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """Give back ``units`` blocked by hand on each night; refuses, naming the nights, where
    fewer are blocked by hand (a channel's blocks are the channel's to lift)."""
    wanted = _range(checkin, checkout, units)
    room_id = await room_type_id(conn, scope, room_type)
    arguments = {"room_type": room_type, "checkin": checkin, "checkout": checkout, "units": units}

    async def plan(conn: asyncpg.Connection) -> dict[str, Any]:
        # Lock the nights first (the same order as every claim), then count.
        locked = await conn.fetch(QUERIES["ari_nights_to_block"], room_id, checkin, checkout)
        _missing(wanted, locked)
        rows = await conn.fetch(QUERIES["manual_blocked_nights"], room_id, checkin, checkout)
        short = [row["date"] for row in rows if row["blocked"] < units]
        if short:
            raise Conflict(f"fewer than {units} units are blocked by hand on {_dates(short)}")
        return {**arguments, "nights": wanted}

    async def apply(conn: asyncpg.Connection, effect: dict[str, Any]) -> dict[str, Any]:
        await conn.execute(QUERIES["remove_manual_units"], room_id, checkin, checkout, units)
        await conn.execute(QUERIES["release_empty_manual_blocks"], room_id)
        return {**effect, "outcome": "unblocked"}

    return await run(
        conn,
        scope,
        "block.remove",
        arguments,
        plan,
        apply,
        execute=execute,
        expected=expected,
        key=key,
    )
