"""Flow A end to end: signed Stripe event → public → local Cloud Tasks → worker (OIDC)
→ reservation, with duplicates, retries, outages and every payment outcome."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from app.dev.fake_stripe import CUSTOMER, event
from tests.e2e.conftest import Stack
from tests.e2e.conftest import book as _book
from tests.e2e.conftest import calendar as _calendar
from tests.inventory.conftest import Calendar
from tests.support import eventually

pytestmark = pytest.mark.usefixtures("stack")


async def _receipt(stack: Stack, payload: bytes) -> Any:
    event_id = orjson.loads(payload)["id"]
    return await stack.pool.fetchrow(
        "SELECT outcome, processed_at, enqueued_at FROM processed_events WHERE external_id = $1",
        event_id,
    )


async def _processed(stack: Stack, payload: bytes) -> str:
    async def done() -> str | None:
        row = await _receipt(stack, payload)
        return row["outcome"] if row and row["processed_at"] else None

    return await eventually(done)


async def _counters(stack: Stack, cal: Calendar) -> list[tuple[int, int]]:
    rows = await stack.pool.fetch(
        "SELECT inv_held, inv_booked FROM ari_days WHERE room_type_id = $1 ORDER BY date LIMIT 3",
        cal.room_type_ids["std"],
    )
    return [(r["inv_held"], r["inv_booked"]) for r in rows]


async def test_paid_checkout_becomes_a_reservation(stack: Stack) -> None:
    """A hold gets its expire task and a Checkout Session; the signed completed event
    goes public → Cloud Tasks → worker (real OIDC) → one reservation, nights booked."""
    cal = await _calendar(stack)
    booking = await _book(stack, cal)
    assert booking.checkout.id in stack.stripe.sessions
    session = stack.stripe.sessions[booking.checkout.id]
    assert session["metadata"]["hold_id"] == str(booking.hold.id)
    assert session["client_reference_id"] == str(booking.hold.id)
    assert session["amount_total"] == booking.hold.total_cents == 60000
    expire_task = f"expire-{booking.hold.id}"
    assert any(name.endswith(expire_task) for name in stack.emulator.tasks)

    payload = event("checkout.session.completed", stack.stripe.complete(booking.checkout.id))
    response = await stack.post_event(payload)
    assert response.status_code == 200, response.text
    assert await _processed(stack, payload) == "converted"
    reservation = await stack.pool.fetchrow("SELECT code, status FROM reservations")
    assert reservation["status"] == "confirmed" and len(reservation["code"]) == 6
    assert await _counters(stack, cal) == [(0, 1), (0, 1), (0, 0)]

    async def delivered_once() -> bool:
        statuses = [d.status for d in stack.emulator.deliveries if d.task.startswith("stripe-")]
        return statuses == [200]

    await eventually(delivered_once)


async def test_same_event_fifty_times_with_forced_retries(stack: Stack) -> None:
    """50 concurrent deliveries of one event, each task also redelivered twice by Cloud
    Tasks: one receipt, one reservation, one payment, one confirmation outbox row."""
    cal = await _calendar(stack)
    booking = await _book(stack, cal)
    stack.emulator.extra_deliveries = 2
    payload = event("checkout.session.completed", stack.stripe.complete(booking.checkout.id))
    responses = await asyncio.gather(*(stack.post_event(payload) for _ in range(50)))
    assert {r.status_code for r in responses} == {200}
    assert await _processed(stack, payload) == "converted"

    async def all_delivered() -> bool:
        return len([d for d in stack.emulator.deliveries if d.task.startswith("stripe-")]) >= 3

    await eventually(all_delivered)
    counts = await stack.pool.fetchrow(
        "SELECT (SELECT count(*) FROM processed_events) AS receipts,"
        " (SELECT count(*) FROM reservations) AS reservations,"
        " (SELECT count(*) FROM payments) AS payments,"
        " (SELECT count(*) FROM outbox_events"
        "  WHERE event_type = 'reservation.confirmed') AS confirmations"
    )
    assert tuple(counts) == (1, 1, 1, 1)
    assert await _counters(stack, cal) == [(0, 1), (0, 1), (0, 0)]


async def test_enqueue_failure_answers_503_then_redelivery_succeeds(stack: Stack) -> None:
    """With Cloud Tasks down the webhook answers 503 and keeps the receipt un-enqueued;
    Stripe's redelivery after recovery enqueues it and the payment converts."""
    cal = await _calendar(stack)
    booking = await _book(stack, cal)
    payload = event("checkout.session.completed", stack.stripe.complete(booking.checkout.id))
    await stack.emulator.stop()
    down = await stack.post_event(payload)
    assert down.status_code == 503 and down.json() == {"error": "service_unavailable"}
    receipt = await _receipt(stack, payload)
    assert receipt is not None and receipt["enqueued_at"] is None
    await stack.emulator.start()

    async def redelivered() -> bool:  # Stripe retries until it gets a 2xx
        return (await stack.post_event(payload)).status_code == 200

    await eventually(redelivered)
    assert await _processed(stack, payload) == "converted"


async def test_no_pii_from_stripe_reaches_database_or_tasks(stack: Stack) -> None:
    """The customer's e-mail and name in the completed event are stored nowhere and put
    in no task body."""
    cal = await _calendar(stack)
    booking = await _book(stack, cal)
    payload = event("checkout.session.completed", stack.stripe.complete(booking.checkout.id))
    assert (await stack.post_event(payload)).status_code == 200
    await _processed(stack, payload)
    dump = await stack.pool.fetchval(
        "SELECT string_agg(t::text, ' ') FROM (SELECT * FROM processed_events) t"
    )
    bodies = b" ".join(t.http_request.body for t in stack.emulator.tasks.values())
    for secret in CUSTOMER.values():
        assert secret not in dump and secret.encode() not in bodies
