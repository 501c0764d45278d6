"""`ops refund PAYMENT_ID`: a payment that booked nothing (needs_refund) refunded by hand
through the back office's refunds — previewed, applied once (the refund row, its task,
Stripe called with its idempotency key), idempotent, audited; any other payment refused."""

from __future__ import annotations

import asyncio
import getpass
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from app import db
from app.ops.checks import run_check
from app.ops.manual_refund import NotRefundable, refund_payment
from tests.e2e.conftest import Stack, book, calendar, running_stack
from tests.e2e.test_commands import _cli, _cli_output
from tests.e2e.test_payment_outcomes import _deliver, _late_payment
from tests.inventory.conftest import Calendar, make_calendar
from tests.support import eventually


@pytest.fixture
async def stack(db_url: str) -> AsyncIterator[Stack]:
    async with running_stack(db_url) as running:
        yield running


async def _refunds(db: asyncpg.Pool | asyncpg.Connection, payment_id: object) -> list[tuple]:
    rows = await db.fetch(
        "SELECT reason, status, amount_cents, stripe_refund_id IS NOT NULL AS at_stripe"
        " FROM refunds WHERE payment_id = $1 ORDER BY created_at",
        payment_id,
    )
    return [tuple(row) for row in rows]


async def test_a_late_payment_is_refunded_by_hand_once(stack: Stack) -> None:
    """Preview: what would be refunded, nothing written. Applied: a pending needs_refund
    refund whose task has Stripe refund the whole payment, which then is `refunded` and
    leaves the runbook's queue. Applied again: already_refunded, Stripe called no more."""
    late, _, session = await _late_payment(stack)
    assert (await _deliver(stack, "checkout.session.completed", session))[0] == "late"
    payment = await stack.pool.fetchrow(
        "SELECT id, amount_cents FROM payments WHERE provider_object_id = $1", late.checkout.id
    )
    pid = str(payment["id"])

    code, preview = await _cli(stack, "ops", "refund", pid)

    assert code == 0 and preview["outcome"] == "preview"
    assert (preview["refund_cents"], preview["currency"], preview["refund_via"]) == (
        payment["amount_cents"],
        "brl",
        "stripe",
    )
    assert await _refunds(stack.pool, payment["id"]) == []

    code, applied = await _cli(stack, "ops", "refund", pid, "--apply")

    assert code == 0 and applied["outcome"] == "refund_requested"

    async def refunded() -> bool:
        status = await stack.pool.fetchval("SELECT status FROM payments WHERE id = $1", pid)
        return bool(status == "refunded")

    await eventually(refunded)
    amount = payment["amount_cents"]
    assert await _refunds(stack.pool, payment["id"]) == [
        ("needs_refund", "succeeded", amount, True)
    ]
    assert [(r["amount"], r["metadata"]) for r in stack.stripe.refunds] == [
        (amount, {"refund_id": applied["refund_id"]})
    ]
    async with stack.pool.acquire() as conn:
        assert await run_check(conn, "payments-without-reservation") == []

    code, again = await _cli(stack, "ops", "refund", pid, "--apply")

    assert code == 0 and again["outcome"] == "already_refunded"
    assert len(stack.stripe.refunds) == 1
    assert len(await _refunds(stack.pool, payment["id"])) == 1
    audit = await stack.pool.fetch(
        "SELECT property_id, actor, command, result FROM audit_log ORDER BY id"
    )
    assert [(a["actor"], a["command"], a["result"]["outcome"]) for a in audit] == [
        (f"cli:{getpass.getuser()}", "payment.refund", "refund_requested"),
        (f"cli:{getpass.getuser()}", "payment.refund", "already_refunded"),
    ]
    inn = await stack.pool.fetchval("SELECT property_id FROM holds WHERE id = $1", late.hold.id)
    assert {a["property_id"] for a in audit} == {inn}


async def test_refund_refuses_a_payment_that_is_not_needs_refund(stack: Stack) -> None:
    """A payment that booked its reservation is refused in one line (exit 1), as is an
    unknown id; no refund is written."""
    booking = await book(stack, await calendar(stack))
    paid = stack.stripe.complete(booking.checkout.id)
    assert (await _deliver(stack, "checkout.session.completed", paid))[0] == "converted"
    pid = await stack.pool.fetchval("SELECT id FROM payments WHERE hold_id = $1", booking.hold.id)

    code, out = await _cli_output(stack, "ops", "refund", str(pid), "--apply")

    assert code == 1 and len(out.strip().splitlines()) == 1
    assert '"error":"not_needs_refund"' in out
    code, unknown = await _cli(stack, "ops", "refund", str(uuid.uuid4()))
    assert code == 1 and unknown["error"] == "not_found"
    assert await stack.pool.fetchval("SELECT count(*) FROM refunds") == 0


async def _needs_refund(conn: asyncpg.Connection, cal: Calendar, provider: str) -> uuid.UUID:
    """A payment of an expired hold that booked nothing (paid late), made by SQL."""
    hold_id = await conn.fetchval(
        "INSERT INTO holds (property_id, status, checkin, checkout, guests, total_cents,"
        " currency, expires_at, create_idempotency_key, request_fingerprint, closed_at)"
        " VALUES ($1, 'expired', $2::date, $2::date + 1, 2, 30000, 'BRL', now(),"
        " gen_random_uuid()::text, 'f', now()) RETURNING id",
        cal.property.id,
        cal.start,
    )
    payment_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO payments (provider, provider_object_id, payment_intent, hold_id, status,"
        " amount_cents, currency) VALUES ($1, CASE WHEN $1 = 'stripe' THEN 'cs_test_late' END,"
        " CASE WHEN $1 = 'stripe' THEN 'pi_late' END, $2, 'needs_refund', 30000, 'brl')"
        " RETURNING id",
        provider,
        hold_id,
    )
    return payment_id


async def test_concurrent_refunds_of_one_payment_request_one_refund(
    db_url: str, conn: asyncpg.Connection
) -> None:
    """N = 2 operators apply `ops refund` on one payment at the same moment: the payment's
    lock serialises them, so one refund row and one refund.requested fact exist; the other
    run answers already_requested, with that refund's id."""
    cal = await make_calendar(conn, [("std", 2, 1, 30000)], days=3)
    payment_id = await _needs_refund(conn, cal, "stripe")
    others = [await db.connect(db_url) for _ in range(2)]
    try:
        results = await asyncio.gather(
            *(refund_payment(c, payment_id, "cli:test", execute=True) for c in others)
        )
    finally:
        await asyncio.gather(*(c.close() for c in others))

    assert sorted(r["outcome"] for r in results) == ["already_requested", "refund_requested"]
    assert len({r["refund_id"] for r in results}) == 1
    assert await _refunds(conn, payment_id) == [("needs_refund", "pending", 30000, False)]
    facts = await conn.fetchval(
        "SELECT count(*) FROM outbox_events WHERE event_type = 'refund.requested'"
    )
    assert facts == 1
    await conn.execute("UPDATE payments SET status = 'failed' WHERE id = $1", payment_id)
    with pytest.raises(NotRefundable):  # the preview refuses as the command does
        await refund_payment(conn, payment_id, "cli:test")


async def test_a_desk_payment_is_refunded_at_the_desk_at_once(conn: asyncpg.Connection) -> None:
    """A payment made at the desk has no provider to call: its refund is `offline`, no task
    is written, and the payment is refunded in the same transaction."""
    cal = await make_calendar(conn, [("std", 2, 1, 30000)], days=3)
    payment_id = await _needs_refund(conn, cal, "offline")

    result = await refund_payment(conn, payment_id, "cli:test", execute=True)

    assert (result["outcome"], result["refund_status"]) == ("refund_requested", "offline")
    assert await _refunds(conn, payment_id) == [("needs_refund", "offline", 30000, False)]
    payment = await conn.fetchrow(
        "SELECT status, refunded_cents FROM payments WHERE id = $1", payment_id
    )
    assert tuple(payment) == ("refunded", 30000)
    assert await conn.fetchval("SELECT count(*) FROM outbox_events") == 0
