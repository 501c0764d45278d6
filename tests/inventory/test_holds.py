"""The critical transactions, one behaviour at a time (races live in test_concurrency)."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
import pytest

from app.errors import BadRequest, IdempotencyConflict, NotFound, NothingAvailable
from app.inventory.holds import (
    Hold,
    HoldRequest,
    Unit,
    cancel_hold,
    convert_hold,
    create_hold,
    expire_due_holds,
    expire_hold,
)
from app.inventory.stay import Party, Stay
from tests.inventory.conftest import Calendar, make_calendar
from tests.support import hold_request

TTL = 600


def _stay(cal: Calendar, first: int, nights: int, guests: int = 2) -> Stay:
    checkin = cal.start + dt.timedelta(days=first)
    return Stay(checkin, checkin + dt.timedelta(days=nights), guests)


def _request(
    cal: Calendar, stay: Stay, rooms: dict[str, int] | None = None, key: str | None = None
) -> HoldRequest:
    rooms = rooms or {"std": 1}
    return hold_request(
        property_id=cal.property.id,
        stay=stay,
        rooms=tuple((cal.room_type_ids[code], qty) for code, qty in rooms.items()),
        idempotency_key=key or uuid.uuid4().hex,
    )


async def _counters(
    conn: asyncpg.Connection, cal: Calendar, code: str, stay: Stay
) -> list[tuple[int, int]]:
    rows = await conn.fetch(
        "SELECT inv_held, inv_booked FROM ari_days WHERE room_type_id = $1"
        " AND date >= $2 AND date < $3 ORDER BY date",
        cal.room_type_ids[code],
        stay.checkin,
        stay.checkout,
    )
    return [(r["inv_held"], r["inv_booked"]) for r in rows]


async def _outbox(conn: asyncpg.Connection, aggregate_id: object) -> list[str]:
    rows = await conn.fetch(
        "SELECT event_type FROM outbox_events WHERE aggregate_id = $1 ORDER BY id",
        str(aggregate_id),
    )
    return [r["event_type"] for r in rows]


async def _backdate(conn: asyncpg.Connection, hold: Hold) -> None:
    await conn.execute(
        "UPDATE holds SET expires_at = now() - interval '1 minute' WHERE id = $1", hold.id
    )


async def _pay(conn: asyncpg.Connection, hold: Hold, **overrides: object):  # type: ignore[no-untyped-def]
    values: dict[str, object] = {
        "provider_object_id": f"cs_{uuid.uuid4().hex}",
        "amount_cents": hold.total_cents,
        "currency": "brl",
    }
    values.update(overrides)
    return await convert_hold(conn, hold.id, **values)  # type: ignore[arg-type]


async def test_create_hold_claims_every_night_and_writes_outbox(conn, calendar) -> None:  # type: ignore[no-untyped-def]
    """A hold owns one row per night, prices them from ARI, and emits hold.created."""
    stay = _stay(calendar, 0, 3)
    hold = await create_hold(conn, _request(calendar, stay, {"std": 2}), ttl_seconds=TTL)
    assert not hold.replayed and hold.total_cents == 3 * 2 * 30000 and hold.currency == "BRL"
    assert await _counters(conn, calendar, "std", stay) == [(2, 0)] * 3
    nights = await conn.fetch(
        "SELECT date, qty FROM hold_nights WHERE hold_id = $1 ORDER BY date", hold.id
    )
    assert [(n["date"], n["qty"]) for n in nights] == [(d, 2) for d in stay.dates()]
    assert await _outbox(conn, hold.id) == ["hold.created"]
    ttl = await conn.fetchval("SELECT expires_at - created_at FROM holds WHERE id = $1", hold.id)
    assert ttl == dt.timedelta(seconds=TTL)


async def test_hold_over_two_room_types_is_one_claim(conn, calendar) -> None:  # type: ignore[no-untyped-def]
    """Several room types in one request are held together, with the combined price."""
    stay = _stay(calendar, 0, 2, guests=6)
    ids = calendar.room_type_ids
    units = (Unit(ids["std"], Party(2)), Unit(ids["fam"], Party(4)))
    hold = await create_hold(
        conn, HoldRequest(calendar.property.id, stay, units, "k"), ttl_seconds=TTL
    )
    assert hold.total_cents == 2 * (30000 + 50000)
    assert await _counters(conn, calendar, "std", stay) == [(1, 0)] * 2
    assert await _counters(conn, calendar, "fam", stay) == [(1, 0)] * 2


async def test_replay_returns_original_hold_and_changes_nothing(conn, calendar) -> None:  # type: ignore[no-untyped-def]
    """The same key and request returns the same hold, marked replayed; counters unchanged."""
    request = _request(calendar, _stay(calendar, 0, 2))
    first = await create_hold(conn, request, ttl_seconds=TTL)
    again = await create_hold(conn, request, ttl_seconds=TTL)
    assert again.id == first.id and again.replayed and again.expires_at == first.expires_at
    assert await _counters(conn, calendar, "std", request.stay) == [(1, 0)] * 2
    assert await conn.fetchval("SELECT count(*) FROM holds") == 1


async def test_same_key_different_request_is_a_conflict(conn, calendar) -> None:  # type: ignore[no-untyped-def]
    """Reusing a key for other dates is refused and claims nothing."""
    first = _request(calendar, _stay(calendar, 0, 2), key="k1")
    await create_hold(conn, first, ttl_seconds=TTL)
    other = _request(calendar, _stay(calendar, 5, 2), key="k1")
    with pytest.raises(IdempotencyConflict):
        await create_hold(conn, other, ttl_seconds=TTL)
    assert await _counters(conn, calendar, "std", other.stay) == [(0, 0)] * 2


async def test_partial_availability_claims_nothing(conn) -> None:  # type: ignore[no-untyped-def]
    """When one night of the stay is sold out, no night is claimed and no hold exists."""
    cal = await make_calendar(conn, [("std", 2, 1, 30000)], days=5)
    await create_hold(conn, _request(cal, _stay(cal, 2, 1)), ttl_seconds=TTL)
    stay = _stay(cal, 0, 4)
    with pytest.raises(NothingAvailable):
        await create_hold(conn, _request(cal, stay), ttl_seconds=TTL)
    assert await _counters(conn, cal, "std", stay) == [(0, 0), (0, 0), (1, 0), (0, 0)]
    assert await conn.fetchval("SELECT count(*) FROM holds") == 1


@pytest.mark.parametrize(
    ("rooms", "guests", "first", "nights", "error"),
    [
        ({"std": 1}, 3, 0, 2, BadRequest),  # too many guests for one std
        ({"std": 1}, 2, 28, 5, NothingAvailable),  # runs past the calendar
        ({"std": 11}, 11, 0, 1, NothingAvailable),  # more rooms than exist
    ],
)
async def test_invalid_or_impossible_requests_are_refused(  # type: ignore[no-untyped-def]
    conn, calendar, rooms, guests, first, nights, error
) -> None:
    """Occupancy beyond the rooms, nights outside the calendar, or too many rooms: refused."""
    stay = _stay(calendar, first, nights, guests)
    with pytest.raises(error):
        await create_hold(conn, _request(calendar, stay, rooms), ttl_seconds=TTL)
    assert await conn.fetchval("SELECT count(*) FROM holds") == 0


async def test_stop_sell_night_cannot_be_held(conn, calendar) -> None:  # type: ignore[no-untyped-def]
    """A stop-sold night makes the whole stay unavailable."""
    await conn.execute(
        "UPDATE ari_days SET stop_sell = true WHERE room_type_id = $1 AND date = $2",
        calendar.room_type_ids["std"],
        calendar.start + dt.timedelta(days=1),
    )
    with pytest.raises(NothingAvailable):
        await create_hold(conn, _request(calendar, _stay(calendar, 0, 3)), ttl_seconds=TTL)


async def test_past_checkin_and_bad_stays_are_refused(conn) -> None:  # type: ignore[no-untyped-def]
    """A check-in before today (property time) is refused; a stay must have 1-30 nights."""
    today = dt.date.today()
    cal = await make_calendar(
        conn, [("std", 2, 1, 30000)], start=today - dt.timedelta(days=5), days=10
    )
    with pytest.raises(BadRequest, match="past"):
        await create_hold(conn, _request(cal, _stay(cal, 0, 1)), ttl_seconds=TTL)
    with pytest.raises(BadRequest):
        Stay(today, today, 2)
    with pytest.raises(BadRequest):
        Stay(today, today + dt.timedelta(days=31), 2)
    with pytest.raises(BadRequest):
        Stay(today, today + dt.timedelta(days=1), 0)


async def test_expire_only_when_due_and_only_once(conn, calendar) -> None:  # type: ignore[no-untyped-def]
    """expire_hold is a no-op before expires_at; when due it releases exactly the held
    nights once; repeating it changes nothing."""
    stay = _stay(calendar, 0, 2)
    hold = await create_hold(conn, _request(calendar, stay), ttl_seconds=TTL)
    assert await expire_hold(conn, hold.id) is False
    assert await _counters(conn, calendar, "std", stay) == [(1, 0)] * 2
    await _backdate(conn, hold)
    assert await expire_hold(conn, hold.id) is True
    assert await expire_hold(conn, hold.id) is False
    assert await _counters(conn, calendar, "std", stay) == [(0, 0)] * 2
    assert await conn.fetchval("SELECT status FROM holds WHERE id = $1", hold.id) == "expired"
    assert await _outbox(conn, hold.id) == ["hold.created", "hold.expired"]


async def test_cancel_releases_active_hold_once(conn, calendar) -> None:  # type: ignore[no-untyped-def]
    """cancel_hold releases an active hold's nights; on any other hold it is a no-op."""
    stay = _stay(calendar, 0, 2)
    hold = await create_hold(conn, _request(calendar, stay), ttl_seconds=TTL)
    assert await cancel_hold(conn, hold.id, "guest_request") is True
    assert await cancel_hold(conn, hold.id, "guest_request") is False
    assert await _counters(conn, calendar, "std", stay) == [(0, 0)] * 2
    row = await conn.fetchrow("SELECT status, cancel_reason FROM holds WHERE id = $1", hold.id)
    assert tuple(row) == ("cancelled", "guest_request")
    converted = await create_hold(conn, _request(calendar, stay), ttl_seconds=TTL)
    await _pay(conn, converted)
    assert await cancel_hold(conn, converted.id, "late") is False
    assert await _counters(conn, calendar, "std", stay) == [(0, 1)] * 2


async def test_unknown_hold_release_is_noop(conn, calendar) -> None:  # type: ignore[no-untyped-def]
    """Expiring or cancelling a hold that does not exist changes nothing."""
    assert await expire_hold(conn, uuid.uuid4()) is False
    assert await cancel_hold(conn, uuid.uuid4(), "x") is False
    with pytest.raises(NotFound):
        await convert_hold(
            conn, uuid.uuid4(), provider_object_id="cs_x", amount_cents=1, currency="brl"
        )


async def test_convert_active_hold_books_nights_once(conn, calendar) -> None:  # type: ignore[no-untyped-def]
    """Paying an active hold creates one reservation with a short code, moves nights from
    held to booked, marks the payment succeeded and emits reservation.confirmed; the same
    payment again changes nothing."""
    stay = _stay(calendar, 0, 3)
    hold = await create_hold(conn, _request(calendar, stay), ttl_seconds=TTL)
    result = await _pay(conn, hold, provider_object_id="cs_one", payment_intent="pi_1")
    assert result.outcome == "converted" and result.reservation_code
    assert len(result.reservation_code) == 6 and result.reservation_code.isalnum()
    assert await _counters(conn, calendar, "std", stay) == [(0, 1)] * 3
    payment = await conn.fetchrow(
        "SELECT status, payment_intent FROM payments WHERE id = $1", result.payment_id
    )
    assert tuple(payment) == ("succeeded", "pi_1")
    assert await _outbox(conn, result.reservation_id) == ["reservation.confirmed"]
    again = await _pay(conn, hold, provider_object_id="cs_one")
    assert again.outcome == "already_processed" and again.reservation_id == result.reservation_id
    assert await conn.fetchval("SELECT count(*) FROM reservations") == 1
    assert await _counters(conn, calendar, "std", stay) == [(0, 1)] * 3


async def test_amount_or_currency_mismatch_needs_refund(conn, calendar) -> None:  # type: ignore[no-untyped-def]
    """A payment whose amount or currency differs from the hold's makes no reservation:
    payment needs_refund, outbox payment.mismatch, the hold keeps its nights."""
    stay = _stay(calendar, 0, 2)
    for overrides in ({"amount_cents": 1}, {"currency": "usd"}):
        hold = await create_hold(conn, _request(calendar, stay), ttl_seconds=TTL)
        result = await _pay(conn, hold, **overrides)
        assert result.outcome == "mismatch" and result.reservation_id is None
        assert (
            await conn.fetchval("SELECT status FROM payments WHERE id = $1", result.payment_id)
            == "needs_refund"
        )
        assert await _outbox(conn, result.payment_id) == ["payment.mismatch"]
        assert await conn.fetchval("SELECT status FROM holds WHERE id = $1", hold.id) == "active"
    assert await conn.fetchval("SELECT count(*) FROM reservations") == 0


async def test_second_payment_for_converted_hold_is_duplicate(conn, calendar) -> None:  # type: ignore[no-untyped-def]
    """Another payment for an already converted hold needs a refund (payment.duplicate)."""
    hold = await create_hold(conn, _request(calendar, _stay(calendar, 0, 2)), ttl_seconds=TTL)
    assert (await _pay(conn, hold)).outcome == "converted"
    second = await _pay(conn, hold)
    assert second.outcome == "duplicate" and second.reservation_id is None
    assert (
        await conn.fetchval("SELECT status FROM payments WHERE id = $1", second.payment_id)
        == "needs_refund"
    )
    assert await _outbox(conn, second.payment_id) == ["payment.duplicate"]
    assert await conn.fetchval("SELECT count(*) FROM reservations") == 1


@pytest.mark.parametrize("closed_by", ["expire", "cancel"])
async def test_late_payment_reclaims_free_nights(conn, calendar, closed_by) -> None:  # type: ignore[no-untyped-def]
    """A hold paid after expiry/cancel whose nights are still free is re-claimed and booked."""
    stay = _stay(calendar, 0, 2)
    hold = await create_hold(conn, _request(calendar, stay), ttl_seconds=TTL)
    if closed_by == "expire":
        await _backdate(conn, hold)
        await expire_hold(conn, hold.id)
    else:
        await cancel_hold(conn, hold.id, "guest")
    result = await _pay(conn, hold)
    assert result.outcome == "converted"
    assert await _counters(conn, calendar, "std", stay) == [(0, 1)] * 2
    assert await conn.fetchval("SELECT status FROM holds WHERE id = $1", hold.id) == "converted"


async def test_late_payment_without_nights_needs_refund(conn) -> None:  # type: ignore[no-untyped-def]
    """A hold paid after expiry whose last free night was taken meanwhile gets no
    reservation: payment needs_refund and payment.late; no night is booked, not even
    the ones still free."""
    cal = await make_calendar(conn, [("std", 2, 1, 30000)], days=5)
    stay = _stay(cal, 0, 3)
    hold = await create_hold(conn, _request(cal, stay), ttl_seconds=TTL)
    await _backdate(conn, hold)
    assert await expire_due_holds(conn, 10) == [hold.id]
    await create_hold(conn, _request(cal, _stay(cal, 2, 1)), ttl_seconds=TTL)
    result = await _pay(conn, hold)
    assert result.outcome == "late" and result.reservation_id is None
    assert (
        await conn.fetchval("SELECT status FROM payments WHERE id = $1", result.payment_id)
        == "needs_refund"
    )
    assert await _outbox(conn, result.payment_id) == ["payment.late"]
    assert await _counters(conn, cal, "std", stay) == [(0, 0), (0, 0), (1, 0)]
    assert await conn.fetchval("SELECT status FROM holds WHERE id = $1", hold.id) == "expired"


async def test_sweep_expires_only_due_active_holds(conn, calendar) -> None:  # type: ignore[no-untyped-def]
    """The sweep expires overdue active holds in batches of `limit` and leaves others."""
    stay = _stay(calendar, 0, 1)
    due = [await create_hold(conn, _request(calendar, stay), ttl_seconds=TTL) for _ in range(5)]
    fresh = await create_hold(conn, _request(calendar, stay), ttl_seconds=TTL)
    for hold in due:
        await _backdate(conn, hold)
    first = await expire_due_holds(conn, 3)
    second = await expire_due_holds(conn, 3)
    assert len(first) == 3 and len(second) == 2
    assert set(first) | set(second) == {h.id for h in due}
    assert await expire_due_holds(conn, 3) == []
    assert await _counters(conn, calendar, "std", stay) == [(1, 0)]
    assert await conn.fetchval("SELECT status FROM holds WHERE id = $1", fresh.id) == "active"


async def test_hold_request_validation() -> None:
    """A request names at least one unit, its parties add up to the stay's guests, and its
    key is usable; a party has an adult and children aged 0-17."""
    stay = Stay(dt.date(2031, 1, 1), dt.date(2031, 1, 2), 2)
    two = (Unit(1, Party(2)),)
    for units, key in [((), "k"), ((Unit(1, Party(1)),), "k"), (two * 2, "k"), (two, "")]:
        with pytest.raises(BadRequest):
            HoldRequest(property_id=1, stay=stay, units=units, idempotency_key=key)
    for adults, ages in [(0, (5,)), (1, (18,)), (1, (-1,))]:
        with pytest.raises(BadRequest):
            Party(adults, ages)


async def test_room_type_of_another_property_is_refused(conn) -> None:  # type: ignore[no-untyped-def]
    """A request mixing the property's room type with another property's claims nothing."""
    a = await make_calendar(conn, [("std", 2, 1, 100)], code="inn-a", days=3)
    b = await make_calendar(conn, [("std", 2, 1, 100)], code="inn-b", days=3)
    request = hold_request(
        a.property.id,
        _stay(a, 0, 1),
        ((a.room_type_ids["std"], 1), (b.room_type_ids["std"], 1)),
        "k1",
    )
    with pytest.raises(NotFound):
        await create_hold(conn, request, ttl_seconds=TTL)
    assert await conn.fetchval("SELECT sum(inv_held) FROM ari_days") == 0
