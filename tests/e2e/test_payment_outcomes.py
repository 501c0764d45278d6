"""Every way a Checkout Session can end, through the real path: signed Stripe event →
public → local Cloud Tasks → worker (OIDC) → Postgres, with the hold made due by SQL
and expired by the worker's sweep rather than by waiting."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from pythonjsonlogger.json import JsonFormatter

from app.dev.fake_stripe import CUSTOMER, event
from app.payments.booking import Booking
from tests.e2e.conftest import SERVICE_ACCOUNT, Stack, running_stack
from tests.e2e.conftest import book as _book
from tests.e2e.conftest import calendar as _calendar
from tests.inventory.conftest import Calendar
from tests.support import eventually


@pytest.fixture
async def refunding_stack(db_url: str) -> AsyncIterator[Stack]:
    """The e2e stack with AUTO_REFUND_LATE_PAYMENTS on."""
    async with running_stack(db_url, auto_refund_late_payments=True) as running:
        yield running


# ---- helpers ---------------------------------------------------------------------------


def _event_id(payload: bytes) -> str:
    return str(orjson.loads(payload)["id"])


async def _receipt(stack: Stack, payload: bytes) -> asyncpg.Record | None:
    return await stack.pool.fetchrow(
        "SELECT outcome, processed_at, enqueued_at FROM processed_events WHERE external_id = $1",
        _event_id(payload),
    )


async def _deliver(stack: Stack, event_type: str, session: dict[str, Any]) -> tuple[str, bytes]:
    """Post the signed event, then wait until the worker has processed it: its outcome."""
    payload = event(event_type, session)
    response = await stack.post_event(payload)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "outcome": "enqueued"}

    async def processed() -> str | None:
        row = await _receipt(stack, payload)
        return row["outcome"] if row and row["processed_at"] else None

    return await eventually(processed), payload


async def _counters(stack: Stack, cal: Calendar) -> list[tuple[int, int]]:
    rows = await stack.pool.fetch(
        "SELECT inv_held, inv_booked FROM ari_days WHERE room_type_id = $1 ORDER BY date LIMIT 3",
        cal.room_type_ids["std"],
    )
    return [(r["inv_held"], r["inv_booked"]) for r in rows]


async def _hold(stack: Stack, booking: Booking) -> asyncpg.Record:
    return await stack.pool.fetchrow(
        "SELECT status, cancel_reason FROM holds WHERE id = $1", booking.hold.id
    )


async def _payment(stack: Stack, session_id: str) -> asyncpg.Record:
    return await stack.pool.fetchrow(
        "SELECT id, status, amount_cents, currency, refund_id, payment_intent FROM payments"
        " WHERE provider_object_id = $1",
        session_id,
    )


async def _reservations(stack: Stack) -> int:
    return int(await stack.pool.fetchval("SELECT count(*) FROM reservations"))


async def _expire_by_sweep(stack: Stack, booking: Booking) -> None:
    """Make the hold due now (SQL), then let the worker's sweep task expire it."""
    await stack.pool.execute(
        "UPDATE holds SET expires_at = now() - interval '1 minute' WHERE id = $1", booking.hold.id
    )
    token = stack.emulator.mint_token(SERVICE_ACCOUNT, str(stack.settings.worker_url))
    async with httpx.AsyncClient(base_url=stack.worker) as http:
        response = await http.post(
            "/tasks/holds/sweep", headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 200, response.text
    assert response.json() == {"outcome": "swept", "expired": 1, "continued": False}
    assert (await _hold(stack, booking))["status"] == "expired"


def _stripe_deliveries(stack: Stack) -> list[int | None]:
    return [d.status for d in stack.emulator.deliveries if d.task.startswith("stripe-")]


# ---- paid after the hold expired ---------------------------------------------------------


async def test_payment_after_expiry_with_nights_free_is_converted(stack: Stack) -> None:
    """A guest who pays after the hold expired still gets the room when every night is
    still free: the nights are re-claimed straight into booked and the hold converts."""
    cal = await _calendar(stack)
    booking = await _book(stack, cal)
    await _expire_by_sweep(stack, booking)
    assert await _counters(stack, cal) == [(0, 0), (0, 0), (0, 0)]

    session = stack.stripe.complete(booking.checkout.id)
    outcome, _ = await _deliver(stack, "checkout.session.completed", session)

    assert outcome == "converted"
    assert (await _hold(stack, booking))["status"] == "converted"
    assert (await _payment(stack, booking.checkout.id))["status"] == "succeeded"
    reservation = await stack.pool.fetchrow("SELECT hold_id, status FROM reservations")
    assert tuple(reservation) == (booking.hold.id, "confirmed")
    assert await _counters(stack, cal) == [(0, 1), (0, 1), (0, 0)]


async def _late_payment(stack: Stack) -> tuple[Booking, Calendar, dict[str, Any]]:
    """Hold A expires, hold B takes its only room, then A's guest pays: A's session."""
    cal = await _calendar(stack, units=1)
    first = await _book(stack, cal)
    await _expire_by_sweep(stack, first)
    second = await _book(stack, cal)
    assert (await _hold(stack, second))["status"] == "active"
    assert await _counters(stack, cal) == [(1, 0), (1, 0), (0, 0)]
    return first, cal, stack.stripe.complete(first.checkout.id)


async def test_payment_after_nights_were_resold_is_late_and_needs_refund(stack: Stack) -> None:
    """Paid after expiry with a night taken by another hold: nothing is booked (no
    overbooking, the other hold keeps its nights) and the payment waits for a refund;
    without AUTO_REFUND_LATE_PAYMENTS no refund is made."""
    late, cal, session = await _late_payment(stack)
    outcome, _ = await _deliver(stack, "checkout.session.completed", session)

    assert outcome == "late"
    payment = await _payment(stack, late.checkout.id)
    assert payment["status"] == "needs_refund" and payment["refund_id"] is None
    assert payment["payment_intent"] == session["payment_intent"]
    assert (await _hold(stack, late))["status"] == "expired"
    assert await _reservations(stack) == 0
    assert await _counters(stack, cal) == [(1, 0), (1, 0), (0, 0)]
    assert stack.stripe.refunds == []
    signal = await stack.pool.fetchval(
        "SELECT count(*) FROM outbox_events WHERE event_type = 'payment.late'"
        " AND aggregate_id = $1",
        str(payment["id"]),
    )
    assert signal == 1


async def test_late_payment_is_refunded_exactly_once_despite_redelivery(
    refunding_stack: Stack,
) -> None:
    """With AUTO_REFUND_LATE_PAYMENTS on, a late payment is refunded at Stripe once and
    marked refunded, even though Cloud Tasks delivers its task three times."""
    stack = refunding_stack
    late, cal, session = await _late_payment(stack)
    stack.emulator.extra_deliveries = 2
    outcome, _ = await _deliver(stack, "checkout.session.completed", session)

    async def all_delivered() -> bool:
        return len(_stripe_deliveries(stack)) >= 3

    await eventually(all_delivered)
    assert _stripe_deliveries(stack) == [200, 200, 200]
    assert outcome == "late"
    [refund] = stack.stripe.refunds
    assert refund["payment_intent"] == session["payment_intent"]
    assert refund["amount"] == late.hold.total_cents
    payment = await _payment(stack, late.checkout.id)
    assert payment["status"] == "refunded" and payment["refund_id"] == refund["id"]
    assert await _reservations(stack) == 0
    assert await _counters(stack, cal) == [(1, 0), (1, 0), (0, 0)]


async def test_refund_retry_records_the_original_decision(refunding_stack: Stack) -> None:
    """When Stripe fails the refund beyond the client's retries the task answers 503 and
    is retried; the retry refunds once and the receipt records 'late', not a replay."""
    stack = refunding_stack
    late, _, session = await _late_payment(stack)
    stack.stripe.fail_next = 3
    outcome, _ = await _deliver(stack, "checkout.session.completed", session)
    assert outcome == "late"
    assert _stripe_deliveries(stack)[0] == 503
    assert len(stack.stripe.refunds) == 1
    assert (await _payment(stack, late.checkout.id))["status"] == "refunded"


@pytest.mark.parametrize(
    ("event_type", "payment_status"),
    [
        ("checkout.session.completed", "paid"),
        ("checkout.session.completed", "unpaid"),
        ("checkout.session.async_payment_failed", "unpaid"),
    ],
)
async def test_event_for_a_hold_we_do_not_have_is_acknowledged(
    stack: Stack, event_type: str, payment_status: str
) -> None:
    """An authentic event naming a hold that is not ours is recorded as unknown_hold and
    its task answers 2xx at once, so Cloud Tasks does not retry it forever."""
    session = {
        "id": f"cs_test_{uuid.uuid4().hex}",
        "object": "checkout.session",
        "amount_total": 1000,
        "currency": "brl",
        "payment_status": payment_status,
        "payment_intent": f"pi_{uuid.uuid4().hex[:24]}",
        "metadata": {"hold_id": str(uuid.uuid4())},
    }
    outcome, _ = await _deliver(stack, event_type, session)
    assert outcome == "unknown_hold"

    async def acknowledged() -> bool:
        return _stripe_deliveries(stack) == [200]

    await eventually(acknowledged)
    assert await stack.pool.fetchval("SELECT count(*) FROM payments") == 0


# ---- payments that do not match the hold ----------------------------------------------


async def test_second_payment_for_a_converted_hold_is_duplicate(stack: Stack) -> None:
    """A second Checkout Session paid for a hold already converted books nothing more:
    the first reservation stands and the second payment waits for a refund."""
    cal = await _calendar(stack)
    booking = await _book(stack, cal)
    first = stack.stripe.complete(booking.checkout.id)
    assert (await _deliver(stack, "checkout.session.completed", first))[0] == "converted"

    second = {
        **first,
        "id": f"cs_test_{uuid.uuid4().hex}",
        "payment_intent": f"pi_{uuid.uuid4().hex[:24]}",
    }
    outcome, _ = await _deliver(stack, "checkout.session.completed", second)

    assert outcome == "duplicate"
    assert (await _payment(stack, second["id"]))["status"] == "needs_refund"
    assert (await _payment(stack, booking.checkout.id))["status"] == "succeeded"
    assert await _reservations(stack) == 1
    assert await _counters(stack, cal) == [(0, 1), (0, 1), (0, 0)]


@pytest.mark.parametrize(
    "change",
    [{"amount_total": 59999}, {"amount_total": 60001}, {"currency": "usd"}],
    ids=["less", "more", "other-currency"],
)
async def test_amount_or_currency_mismatch_books_nothing(
    stack: Stack, change: dict[str, Any]
) -> None:
    """A paid session whose amount or currency differs from the hold's books nothing: the
    outcome is 'mismatch', the payment (with what was actually paid) needs a refund and
    the hold keeps its nights until it expires."""
    cal = await _calendar(stack)
    booking = await _book(stack, cal)
    session = {**stack.stripe.complete(booking.checkout.id), **change}
    outcome, _ = await _deliver(stack, "checkout.session.completed", session)

    assert outcome == "mismatch"
    payment = await _payment(stack, booking.checkout.id)
    assert payment["status"] == "needs_refund"
    assert (payment["amount_cents"], payment["currency"]) == (
        session["amount_total"],
        session["currency"],
    )
    assert await _reservations(stack) == 0
    assert (await _hold(stack, booking))["status"] == "active"
    assert await _counters(stack, cal) == [(1, 0), (1, 0), (0, 0)]


# ---- delayed payment methods and expiry -----------------------------------------------


async def _pending(stack: Stack) -> tuple[Booking, Calendar]:
    cal = await _calendar(stack)
    booking = await _book(stack, cal)
    unpaid = stack.stripe.complete(booking.checkout.id, payment_status="unpaid")
    outcome, _ = await _deliver(stack, "checkout.session.completed", unpaid)
    assert outcome == "pending"
    assert (await _payment(stack, booking.checkout.id))["status"] == "pending"
    assert (await _hold(stack, booking))["status"] == "active"
    assert await _counters(stack, cal) == [(1, 0), (1, 0), (0, 0)]
    assert await _reservations(stack) == 0
    return booking, cal


async def test_delayed_payment_pending_then_succeeded_is_converted(stack: Stack) -> None:
    """A delayed method (boleto, Pix): the session completes unpaid, so the payment is
    pending and the hold keeps its nights; async_payment_succeeded then books it."""
    booking, cal = await _pending(stack)
    paid = stack.stripe.complete(booking.checkout.id, payment_status="paid")
    outcome, _ = await _deliver(stack, "checkout.session.async_payment_succeeded", paid)

    assert outcome == "converted"
    assert (await _payment(stack, booking.checkout.id))["status"] == "succeeded"
    assert (await _hold(stack, booking))["status"] == "converted"
    assert await _reservations(stack) == 1
    assert await _counters(stack, cal) == [(0, 1), (0, 1), (0, 0)]


async def test_delayed_payment_failed_cancels_hold_and_releases_nights(stack: Stack) -> None:
    """async_payment_failed after a pending payment marks it failed, cancels the hold
    and gives its nights back at once."""
    booking, cal = await _pending(stack)
    session = stack.stripe.sessions[booking.checkout.id]
    outcome, _ = await _deliver(stack, "checkout.session.async_payment_failed", session)

    assert outcome == "payment_failed"
    assert (await _payment(stack, booking.checkout.id))["status"] == "failed"
    assert tuple(await _hold(stack, booking)) == ("cancelled", "payment_failed")
    assert await _reservations(stack) == 0
    assert await _counters(stack, cal) == [(0, 0), (0, 0), (0, 0)]


async def test_expired_checkout_session_cancels_hold_at_once(stack: Stack) -> None:
    """checkout.session.expired cancels the hold and releases its nights right away,
    without waiting for the hold's own expiry."""
    cal = await _calendar(stack)
    booking = await _book(stack, cal)
    session = {**stack.stripe.sessions[booking.checkout.id], "status": "expired"}
    outcome, _ = await _deliver(stack, "checkout.session.expired", session)

    assert outcome == "hold_cancelled"
    assert tuple(await _hold(stack, booking)) == ("cancelled", "checkout_expired")
    assert await _counters(stack, cal) == [(0, 0), (0, 0), (0, 0)]
    assert await _reservations(stack) == 0


# ---- at-least-once delivery --------------------------------------------------------------


async def test_task_redelivered_after_commit_is_a_no_op(stack: Stack) -> None:
    """When the worker's 2xx is lost after its commit, Cloud Tasks delivers the task
    again: the second run changes nothing (one reservation, one payment decision, the
    receipt keeps its first outcome and time)."""
    cal = await _calendar(stack)
    booking = await _book(stack, cal)
    stack.emulator.extra_deliveries = 1
    session = stack.stripe.complete(booking.checkout.id)
    outcome, payload = await _deliver(stack, "checkout.session.completed", session)
    assert outcome == "converted"
    first = await _receipt(stack, payload)

    async def both_delivered() -> bool:
        return len(_stripe_deliveries(stack)) >= 2

    await eventually(both_delivered)
    assert _stripe_deliveries(stack) == [200, 200]
    again = await _receipt(stack, payload)
    assert again is not None and first is not None
    assert (again["outcome"], again["processed_at"]) == ("converted", first["processed_at"])
    counts = await stack.pool.fetchrow(
        "SELECT (SELECT count(*) FROM reservations) AS reservations,"
        " (SELECT count(*) FROM payments) AS payments,"
        " (SELECT count(*) FROM outbox_events"
        "  WHERE event_type = 'reservation.confirmed') AS confirmations"
    )
    assert tuple(counts) == (1, 1, 1)
    assert (await _payment(stack, booking.checkout.id))["status"] == "succeeded"
    assert await _counters(stack, cal) == [(0, 1), (0, 1), (0, 0)]


# ---- PII -----------------------------------------------------------------------------------


async def test_no_pii_or_raw_payload_in_logs_or_rows(
    stack: Stack, all_logs: pytest.LogCaptureFixture
) -> None:
    """Through a whole paid flow, with every logger at DEBUG, no log record carries the
    customer's e-mail or name, the raw event payload or its signature; and no receipt,
    payment, outbox or reservation row holds the e-mail or name."""
    cal = await _calendar(stack)
    booking = await _book(stack, cal)
    session = stack.stripe.complete(booking.checkout.id)
    payload = event("checkout.session.completed", session)
    signature = stack.sign(payload)
    response = await stack.post_event(payload, **{"Stripe-Signature": signature})
    assert response.status_code == 200, response.text

    async def processed() -> str | None:
        row = await _receipt(stack, payload)
        return row["outcome"] if row and row["processed_at"] else None

    assert await eventually(processed) == "converted"

    formatter = JsonFormatter()
    records = all_logs.records
    assert any(r.getMessage() == "stripe_event_processed" for r in records)
    texts = [f"{formatter.format(r)} {vars(r)!r}" for r in records]
    forbidden = [*CUSTOMER.values(), payload.decode(), signature]
    for text in texts:
        for secret in forbidden:
            assert secret not in text
    dump = await stack.pool.fetchval(
        "SELECT concat_ws(' ',"
        " (SELECT string_agg(t::text, ' ') FROM processed_events t),"
        " (SELECT string_agg(t::text, ' ') FROM payments t),"
        " (SELECT string_agg(t::text, ' ') FROM outbox_events t),"
        " (SELECT string_agg(t::text, ' ') FROM reservations t))"
    )
    assert _event_id(payload) in dump  # the rows are there...
    for secret in CUSTOMER.values():
        assert secret not in dump  # ...without the customer in them
