"""The critical transactions: create, expire, cancel and convert holds, and the sweep.

Each function takes a connection and runs exactly one transaction, a single call
of the SQL function of the same name (sql/migrations/0007_pipeline.sql), so the
contended row locks live for one round trip. None of them calls the network.

Each notes the outbox rows it wrote (``outbox.written``) for the relay that follows its
handler, and stamps them with a correlation id: the one given, else the current request's
or command's. Each change of a hold's state logs one line (``hold_created``,
``hold_expired``, ``hold_cancelled``, ``hold_converted``, ``payment_needs_refund``): event
names and fields are contracts the log-based metrics read (docs/operations/observability.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
from dataclasses import dataclass

import asyncpg
import orjson

from app.db import QUERIES
from app.errors import (
    AppError,
    BadRequest,
    Busy,
    IdempotencyConflict,
    NotFound,
    NothingAvailable,
    StayRuleBroken,
)
from app.inventory.stay import Party, Stay
from app.logging import correlation_id as current_correlation
from app.tasks import outbox

log = logging.getLogger("app.inventory")

# The stay rules create_hold enforces, by the name it refuses with.
STAY_RULES = ("min_stay", "max_stay", "closed_to_arrival", "closed_to_departure", "stop_sell")
_UNAVAILABLE = "HL001"  # raised by create_hold when a concurrent claim won a night
_RETRYABLE = {"55P03": "lock_timeout", "40P01": "deadlock", "40001": "serialization"}


@dataclass(frozen=True)
class Unit:
    """One unit of a room type and the party sleeping in it."""

    room_type_id: int
    party: Party


@dataclass(frozen=True)
class HoldRequest:
    property_id: int
    stay: Stay
    units: tuple[Unit, ...]  # one per unit; the stay's guests are theirs together
    idempotency_key: str
    conversation_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        if not self.units:
            raise BadRequest("name at least one unit")
        if sum(unit.party.guests for unit in self.units) != self.stay.guests:
            raise BadRequest("the units' parties must add up to the stay's guests")
        if not self.idempotency_key or len(self.idempotency_key) > 200:
            raise BadRequest("idempotency key must be 1-200 characters")

    def units_json(self) -> list[dict[str, object]]:
        return [{"room_type_id": u.room_type_id, **u.party.as_json()} for u in self.units]

    def fingerprint(self) -> str:
        """What makes two requests 'the same' for idempotency (the key itself excluded)."""
        canonical = {
            "property_id": self.property_id,
            "checkin": self.stay.checkin.isoformat(),
            "checkout": self.stay.checkout.isoformat(),
            "units": self.units_json(),
            "conversation_id": str(self.conversation_id) if self.conversation_id else None,
        }
        return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class Hold:
    id: uuid.UUID
    expires_at: dt.datetime
    total_cents: int
    currency: str
    replayed: bool


@dataclass(frozen=True)
class Conversion:
    outcome: str  # converted | already_processed | late | duplicate | mismatch
    payment_id: uuid.UUID
    reservation_id: uuid.UUID | None
    reservation_code: str | None


def _translate(exc: asyncpg.PostgresError) -> Exception:
    """Driver errors become domain errors here, and only here; others pass unchanged."""
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate == _UNAVAILABLE:
        return NothingAvailable()
    if sqlstate in _RETRYABLE:
        return Busy(f"calendar busy ({_RETRYABLE[sqlstate]})")
    return exc


async def create_hold(
    conn: asyncpg.Connection,
    request: HoldRequest,
    *,
    ttl_seconds: int,
    correlation_id: str | None = None,
) -> Hold:
    """Claim every night of the request or none; a replayed key returns the original hold.

    Invariant: for each night, inv_held + inv_booked + inv_blocked <= inv_total, and a
    committed hold owns exactly the nights in its hold_nights rows.
    """
    try:
        row = await conn.fetchrow(
            QUERIES["create_hold"],
            request.property_id,
            request.units_json(),
            request.stay.checkin,
            request.stay.checkout,
            ttl_seconds,
            request.idempotency_key,
            request.fingerprint(),
            request.conversation_id,
            correlation_id or current_correlation.get(),
        )
    except asyncpg.PostgresError as exc:
        raise _translate(exc) from None
    assert row is not None
    outbox.written([row["outbox_id"]])
    outcome = row["outcome"]
    if outcome == "created":
        log.info(
            "hold_created",
            extra={
                "hold_id": str(row["hold_id"]),
                "property_id": request.property_id,
                "nights": request.stay.nights,
                "units": len(request.units),
            },
        )
    if outcome in ("created", "replayed"):
        return Hold(
            id=row["hold_id"],
            expires_at=row["expires_at"],
            total_cents=row["total_cents"],
            currency=row["currency"],
            replayed=outcome == "replayed",
        )
    if outcome == "unavailable":
        raise NothingAvailable()
    if outcome == "conflict":
        raise IdempotencyConflict()
    if outcome == "invalid_property":
        raise NotFound("no such property or room type")
    if outcome == "too_many_guests":
        raise BadRequest("a unit's party does not fit its room type")
    if outcome in STAY_RULES:
        raise StayRuleBroken(outcome, row["refused_on"], row["refused_bound"])
    if outcome == "past_dates":
        raise BadRequest("check-in is in the past")
    raise AppError(f"create_hold returned {outcome!r}")


async def _release(
    conn: asyncpg.Connection,
    hold_id: uuid.UUID,
    status: str,
    reason: str | None,
    correlation_id: str | None,
) -> bool:
    try:
        row = await conn.fetchrow(
            QUERIES["release_hold"],
            hold_id,
            status,
            reason,
            correlation_id or current_correlation.get(),
        )
    except asyncpg.PostgresError as exc:
        raise _translate(exc) from None
    assert row is not None
    outbox.written([row["outbox_id"]])
    released = bool(row["outcome"] == status)
    if released:
        if status == "expired":
            log.info("hold_expired", extra={"hold_id": str(hold_id), "via": "task"})
        else:
            log.info("hold_cancelled", extra={"hold_id": str(hold_id), "reason": reason})
    return released


async def expire_hold(
    conn: asyncpg.Connection, hold_id: uuid.UUID, *, correlation_id: str | None = None
) -> bool:
    """Expire an active hold that is due, releasing exactly its nights. False: no-op."""
    return await _release(conn, hold_id, "expired", "ttl", correlation_id)


async def cancel_hold(
    conn: asyncpg.Connection, hold_id: uuid.UUID, reason: str, *, correlation_id: str | None = None
) -> bool:
    """Cancel an active hold, releasing exactly its nights. False: it was not active."""
    return await _release(conn, hold_id, "cancelled", reason, correlation_id)


async def expire_due_holds(conn: asyncpg.Connection, limit: int) -> list[uuid.UUID]:
    """Expire up to ``limit`` overdue active holds, skipping rows others have locked.

    Each expiry's outbox row carries its hold's correlation id (the sweep's own for a
    hold that has none)."""
    try:
        rows = await conn.fetch(QUERIES["expire_due_holds"], limit, current_correlation.get())
    except asyncpg.PostgresError as exc:
        raise _translate(exc) from None
    outbox.written(row["outbox_id"] for row in rows)
    # One line per hold, like an expire task's, so a count of expiries or a search by hold id
    # finds the sweep's too; "via" tells lost expire tasks apart.
    for row in rows:
        log.info("hold_expired", extra={"hold_id": str(row["hold_id"]), "via": "sweep"})
    return [row["hold_id"] for row in rows]


async def convert_hold(
    conn: asyncpg.Connection,
    hold_id: uuid.UUID,
    *,
    provider_object_id: str | None,
    amount_cents: int,
    currency: str,
    payment_intent: str | None = None,
    provider: str = "stripe",
    correlation_id: str | None = None,
) -> Conversion:
    """Turn a paid hold into its one reservation, or record why the payment needs a refund.

    Invariant: a hold has at most one reservation; nights move from held to booked in
    the same transaction; an expired/cancelled hold is booked only if all its nights
    are still free; every payment is decided once. A payment made at the desk
    (provider ``offline``) has no provider object id.
    """
    try:
        row = await conn.fetchrow(
            QUERIES["convert_hold"],
            hold_id,
            provider,
            provider_object_id,
            amount_cents,
            currency,
            payment_intent,
            correlation_id or current_correlation.get(),
        )
    except asyncpg.PostgresError as exc:
        raise _translate(exc) from None
    assert row is not None
    outbox.written([row["outbox_id"]])
    if row["outcome"] == "unknown_hold":
        raise NotFound("no such hold")
    fields = {"hold_id": str(hold_id), "payment_id": str(row["payment_id"]), "provider": provider}
    if row["outcome"] == "converted":
        log.info("hold_converted", extra={**fields, "reservation_id": str(row["reservation_id"])})
    elif row["outcome"] in ("late", "duplicate", "mismatch"):
        log.warning("payment_needs_refund", extra={**fields, "outcome": row["outcome"]})
    return Conversion(
        outcome=row["outcome"],
        payment_id=row["payment_id"],
        reservation_id=row["reservation_id"],
        reservation_code=row["reservation_code"],
    )
