"""Cancelling a reservation: the policy's refund, the nights released, the guest and the
staff told, Stripe asked (by the refund's own task) to give the money back."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from app.backoffice.refunds import Refund, request_refund
from app.backoffice.runner import Scope, local_today, run
from app.db import QUERIES
from app.errors import BadRequest, NotFound
from app.logging import correlation_id
from app.tasks import outbox

COMMAND = "reservation.cancel"


def policy_percent(tiers: list[asyncpg.Record], days_before: int) -> int:
    """The refund percent of the first tier (most days first) the cancellation reaches;
    nothing once every tier has passed, or without a policy."""
    for tier in tiers:
        if days_before >= tier["days_before"]:
            return int(tier["refund_percent"])
    return 0


def percent_of(cents: int, percent: int) -> int:
    """``percent`` of ``cents``, rounded half up: integer cents, no float."""
    return (cents * percent + 50) // 100


async def cancel_reservation(
    conn: asyncpg.Connection,
    scope: Scope,
    code: str,
    *,
    refund_percent: int | None = None,
    execute: bool = False,
    expected: str | None = None,
    key: str | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Preview or apply the cancel of reservation ``code``; a cancelled one is a no-op
    (``already_cancelled``). ``refund_percent`` overrides the policy (audited)."""
    if refund_percent is not None and not 0 <= refund_percent <= 100:
        raise BadRequest("refund percent must be between 0 and 100")
    prop = scope.property

    async def plan(conn: asyncpg.Connection) -> dict[str, Any]:
        row = await conn.fetchrow(QUERIES["reservation_to_cancel"], prop.id, code)
        if row is None:
            raise NotFound(f"no reservation {code!r} at {prop.code!r}")
        if row["status"] == "cancelled":
            return {"code": code, "outcome": "already_cancelled"}
        days_before = (row["checkin"] - local_today(scope, now)).days
        tiers = await conn.fetch(QUERIES["cancellation_tiers"], prop.id)
        percent = policy_percent(tiers, days_before) if refund_percent is None else refund_percent
        refundable = (row["paid_cents"] or 0) - row["refunded_cents"]
        nights = await conn.fetch(QUERIES["reservation_nights"], row["hold_id"])
        return {
            "code": code,
            "checkin": row["checkin"],
            "checkout": row["checkout"],
            "nights": [
                {"room_type": n["room_type"], "date": n["date"], "units": n["qty"]} for n in nights
            ],
            "days_before": days_before,
            "refund_percent": percent,
            "percent_from": "policy" if refund_percent is None else "staff",
            "refund_cents": max(0, min(refundable, percent_of(row["total_cents"], percent))),
            "currency": row["currency"],
            "refund_via": row["provider"],
        }

    async def apply(conn: asyncpg.Connection, effect: dict[str, Any]) -> dict[str, Any]:
        if effect.get("outcome") == "already_cancelled":
            return effect
        # The row is locked by plan(): read what the writes need.
        row = await conn.fetchrow(QUERIES["reservation_to_cancel"], prop.id, code)
        cid = correlation_id.get()
        await conn.execute(QUERIES["release_reservation_nights"], row["hold_id"])
        await conn.execute(QUERIES["mark_reservation_cancelled"], row["id"], "staff")
        refund = None
        if effect["refund_cents"] > 0:
            refund = await request_refund(
                conn,
                Refund(
                    row["payment_id"],
                    prop.id,
                    row["provider"],
                    effect["refund_cents"],
                    "cancellation",
                    row["id"],
                ),
            )
        cancelled = await conn.fetchval(
            QUERIES["insert_outbox"],
            "reservation.cancelled",
            "reservation",
            str(row["id"]),
            {
                "reservation_id": str(row["id"]),
                "code": code,
                "hold_id": str(row["hold_id"]),
                "property_id": prop.id,
                "conversation_id": str(row["conversation_id"]) if row["conversation_id"] else None,
                "refund_cents": effect["refund_cents"],
                "refund_percent": effect["refund_percent"],
                "currency": row["currency"],
            },
            cid,
        )
        outbox.written([cancelled])
        return {
            **effect,
            "outcome": "cancelled",
            "refund_id": str(refund["id"]) if refund else None,
            "refund_status": refund["status"] if refund else None,
        }

    arguments = {"code": code, "refund_percent": refund_percent}
    return await run(
        conn, scope, COMMAND, arguments, plan, apply, execute=execute, expected=expected, key=key
    )
