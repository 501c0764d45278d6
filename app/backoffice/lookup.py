"""What the staff look up: a reservation (by code or guest name), a day at the inn, the
holds awaiting payment and the open channel conflicts. Reads only (each audited)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from app.backoffice.runner import Scope, audit
from app.backoffice.walk_in import NAME_PURPOSE
from app.db import QUERIES
from app.errors import BadRequest, NotFound
from app.pii import PiiKeys


def _name(pii: PiiKeys, sealed: bytes | None) -> str | None:
    return pii.decrypt(sealed, NAME_PURPOSE) if sealed is not None else None


async def show_reservation(
    conn: asyncpg.Connection, scope: Scope, pii: PiiKeys, code: str
) -> dict[str, Any]:
    row = await conn.fetchrow(QUERIES["reservation_detail"], scope.property.id, code)
    if row is None:
        await audit(conn, scope, "reservation.show", {"code": code}, {"error": "not_found"})
        raise NotFound(f"no reservation {code!r} at {scope.property.code!r}")
    await audit(conn, scope, "reservation.show", {"code": code}, {"outcome": "shown"})
    shown = dict(row)
    return {**shown, "guest_name": _name(pii, shown.pop("guest_name_sealed"))}


async def find_by_name(
    conn: asyncpg.Connection, scope: Scope, pii: PiiKeys, name: str
) -> list[str]:
    """Codes of the reservations whose guest name has every word of ``name``."""
    index = pii.name_index(name)
    if not index:
        raise BadRequest("give at least one word of the guest's name")
    rows = await conn.fetch(QUERIES["reservations_by_name"], scope.property.id, index)
    codes = [row["code"] for row in rows]
    await audit(conn, scope, "reservation.search", {"words": len(index)}, {"found": len(codes)})
    return codes


async def day_at_inn(
    conn: asyncpg.Connection, scope: Scope, pii: PiiKeys, day: dt.date
) -> dict[str, Any]:
    rows = await conn.fetch(QUERIES["reservations_of_day"], scope.property.id, day)
    out: dict[str, list[dict[str, Any]]] = {"arrival": [], "departure": [], "in_house": []}
    for row in rows:
        out[row["kind"]].append(
            {
                "code": row["code"],
                "rooms": row["rooms"],
                "checkin": row["checkin"],
                "checkout": row["checkout"],
                "guests": row["guests"],
                "guest_name": _name(pii, row["guest_name_sealed"]),
            }
        )
    result = {
        "date": day,
        "arrivals": out["arrival"],
        "departures": out["departure"],
        "in_house": out["in_house"],
    }
    await audit(conn, scope, "reservations.day", {"date": day}, {k: len(v) for k, v in out.items()})
    return result


async def holds_awaiting_payment(conn: asyncpg.Connection, scope: Scope) -> list[dict[str, Any]]:
    rows = await conn.fetch(QUERIES["holds_awaiting_payment"], scope.property.id)
    await audit(conn, scope, "holds.awaiting", {}, {"found": len(rows)})
    return [{**dict(row), "ref": str(row["id"])[:8]} for row in rows]


async def open_conflicts(conn: asyncpg.Connection, scope: Scope) -> list[dict[str, Any]]:
    rows = await conn.fetch(QUERIES["open_conflicts_of_property"], scope.property.id)
    await audit(conn, scope, "conflicts.open", {}, {"found": len(rows)})
    return [dict(row) for row in rows]
