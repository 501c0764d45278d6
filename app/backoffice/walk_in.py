"""A walk-in or phone reservation: booked without Stripe (paid at the desk, an ``offline``
payment), priced by the rates, all or nothing as a guest's hold and payment are."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import asyncpg
import orjson

from app.backoffice.runner import Scope, room_type_id, run
from app.db import QUERIES
from app.errors import BadRequest, NothingAvailable, PreviewChanged
from app.inventory.holds import HoldRequest, Unit, convert_hold, create_hold
from app.inventory.quote import quote
from app.inventory.stay import Party, Stay
from app.pii import PiiKeys

COMMAND = "reservation.create"
# The walk-in's hold is converted in the transaction that makes it; its expiry never comes.
WALK_IN_HOLD_SECONDS = 3600
NAME_PURPOSE = "reservation:guest_name"


async def create_walk_in(
    conn: asyncpg.Connection,
    scope: Scope,
    pii: PiiKeys,
    room_type: str,
    checkin: dt.date,
    checkout: dt.date,
    party: Party,
    name: str,
    *,
    execute: bool = False,
    expected: str | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """Preview or book one unit of ``room_type`` for ``party``. The guest's name is kept
    sealed, with its blind index, and appears in no preview, audit row or log; the same
    booking applied twice is booked once (``already_created``)."""
    name = " ".join(name.split())
    if not name or len(name) > 200:
        raise BadRequest("the guest's name must be 1-200 characters")
    stay = Stay(checkin, checkout, party.guests)
    room_id = await room_type_id(conn, scope, room_type)
    prop = scope.property
    index = pii.name_index(name)
    arguments = {
        "room_type": room_type,
        "checkin": checkin,
        "checkout": checkout,
        **party.as_json(),
    }
    # The same booking of the same guest is one booking, however often it is applied.
    hold_key = (
        "walkin-"
        + hashlib.sha256(
            orjson.dumps([arguments, index], default=str, option=orjson.OPT_SORT_KEYS)
        ).hexdigest()[:40]
    )

    async def plan(conn: asyncpg.Connection) -> dict[str, Any]:
        booked = await conn.fetchval(QUERIES["reservation_of_hold_key"], prop.id, hold_key)
        if booked is not None:
            return {"code": booked, "outcome": "already_created"}
        options = await quote(conn, prop, stay, party)
        option = next((o for o in options if o.room_type_id == room_id), None)
        if option is None:
            raise NothingAvailable(
                f"{room_type} has no unit for sale for this party from {checkin} to {checkout}"
            )
        return {
            "room_type": room_type,
            "checkin": checkin,
            "checkout": checkout,
            **party.as_json(),
            "nights": [{"date": n.date, "cents": n.rate_cents} for n in option.nights],
            "total_cents": option.total_cents,
            "currency": prop.currency,
        }

    async def apply(conn: asyncpg.Connection, effect: dict[str, Any]) -> dict[str, Any]:
        if effect.get("outcome") == "already_created":
            return effect
        request = HoldRequest(
            property_id=prop.id, stay=stay, units=(Unit(room_id, party),), idempotency_key=hold_key
        )
        hold = await create_hold(conn, request, ttl_seconds=WALK_IN_HOLD_SECONDS)
        if hold.total_cents != effect["total_cents"]:
            # A price changed between the quote and the locked nights.
            raise PreviewChanged(
                {"preview": {**effect, "total_cents": hold.total_cents, "nights": None}}
            )
        conversion = await convert_hold(
            conn,
            hold.id,
            provider_object_id=None,
            amount_cents=hold.total_cents,
            currency=hold.currency,
            provider="offline",
        )
        if conversion.outcome != "converted" or conversion.reservation_id is None:
            raise NothingAvailable("the booking could not be completed")
        await conn.execute(
            QUERIES["set_guest_name"],
            conversion.reservation_id,
            pii.encrypt(name, NAME_PURPOSE),
            index,
        )
        return {
            **effect,
            "outcome": "created" if conversion.outcome == "converted" else "already_created",
            "code": conversion.reservation_code,
        }

    arguments = {
        "room_type": room_type,
        "checkin": checkin,
        "checkout": checkout,
        **party.as_json(),
    }
    return await run(
        conn, scope, COMMAND, arguments, plan, apply, execute=execute, expected=expected, key=key
    )
