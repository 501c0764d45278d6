"""Refunds and disputes through the real path: our refund's task (outbox → local Cloud
Tasks → worker, OIDC) calling the fake Stripe with the real library, and Stripe's signed
charge.refunded / charge.dispute.* events → public webhook → worker → Postgres."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson
import pytest
from pythonjsonlogger.json import JsonFormatter

from app.dev.fake_stripe import CUSTOMER, event
from app.inventory.properties import get_property
from app.inventory.property_file import PropertySpec, RoomTypeSpec
from app.inventory.setup import import_property
from app.pii import pii_keys
from tests.e2e.conftest import Stack, rows_as_text, worker_task
from tests.e2e.conftest import book as _book
from tests.e2e.test_commands import _cli
from tests.inventory.conftest import START, Calendar
from tests.support import eventually

STAFF = ("+55 48 99999-0001", "+55 48 99999-0002")
STAFF_IDS = ("5548999990001", "5548999990002")
TEMPLATES = {"staff_notice": {"pt": "aviso_equipe"}}
REFUND_TASK = "/tasks/payments/refund"


# ---- helpers ---------------------------------------------------------------------------


async def _inn(stack: Stack) -> Calendar:
    """An inn with two staff numbers and one room type 'std' (2 rooms, R$300) for 10 nights."""
    spec = PropertySpec(
        code="test-inn",
        name="Pousada Teste",
        timezone="America/Sao_Paulo",
        currency="BRL",
        whatsapp={"phone_number_id": "pn-test-inn", "templates": TEMPLATES},
        room_types=(RoomTypeSpec("std", "Std", 2, 2, 30000),),
        overrides=(),
        start=START,
        end=START + dt.timedelta(days=10),
        staff_numbers=STAFF,
    )
    async with stack.pool.acquire() as conn:
        await import_property(conn, spec, pii=pii_keys(stack.settings))
        prop = await get_property(conn, "test-inn")
        ids = dict(
            await conn.fetch("SELECT code, id FROM room_types WHERE property_id = $1", prop.id)
        )
    return Calendar(property=prop, room_type_ids=ids, start=START, days=10)


async def _processed(stack: Stack, payload: bytes) -> str:
    """Wait until the worker has processed the event: its outcome."""
    event_id = orjson.loads(payload)["id"]

    async def done() -> str | None:
        row = await stack.pool.fetchrow(
            "SELECT outcome, processed_at FROM processed_events WHERE external_id = $1", event_id
        )
        return row["outcome"] if row and row["processed_at"] else None

    return await eventually(done)


async def _deliver(stack: Stack, event_type: str, obj: dict[str, Any]) -> tuple[str, bytes]:
    payload = event(event_type, obj)
    response = await stack.post_event(payload)
    assert response.status_code == 200, response.text
    return await _processed(stack, payload), payload


async def _confirmed(stack: Stack, cal: Calendar) -> asyncpg.Record:
    """A paid, confirmed reservation (hold → Checkout → signed completed event): its
    payment's id, payment intent and amount, and the reservation's id and code."""
    booking = await _book(stack, cal)
    outcome, _ = await _deliver(
        stack, "checkout.session.completed", stack.stripe.complete(booking.checkout.id)
    )
    assert outcome == "converted"
    return await stack.pool.fetchrow(
        "SELECT p.id, p.payment_intent, p.amount_cents, h.property_id,"
        " r.id AS reservation_id, r.code"
        " FROM payments p JOIN holds h ON h.id = p.hold_id"
        " JOIN reservations r ON r.payment_id = p.id WHERE p.hold_id = $1",
        booking.hold.id,
    )


async def _request_refund(stack: Stack, paid: asyncpg.Record, cents: int) -> tuple[str, int]:
    """What a cancel's transaction writes: a pending refund and its refund.requested fact."""
    async with stack.pool.acquire() as conn, conn.transaction():
        refund_id = await conn.fetchval(
            "INSERT INTO refunds (id, payment_id, reservation_id, amount_cents, reason,"
            " idempotency_key) SELECT i, $1, $2, $3, 'cancellation', 'refund-' || i"
            " FROM gen_random_uuid() AS i RETURNING id",
            paid["id"],
            paid["reservation_id"],
            cents,
        )
        outbox_id = await conn.fetchval(
            "INSERT INTO outbox_events (event_type, aggregate_type, aggregate_id, payload)"
            " VALUES ('refund.requested', 'refund', $1, $2) RETURNING id",
            str(refund_id),
            {
                "refund_id": str(refund_id),
                "payment_id": str(paid["id"]),
                "property_id": paid["property_id"],
                "reservation_id": str(paid["reservation_id"]),
            },
        )
    return str(refund_id), int(outbox_id)


async def _refund_rows(stack: Stack, paid: asyncpg.Record) -> list[asyncpg.Record]:
    return await stack.pool.fetch(
        "SELECT id, reason, status, amount_cents, stripe_refund_id FROM refunds"
        " WHERE payment_id = $1 ORDER BY created_at",
        paid["id"],
    )


async def _payment(stack: Stack, paid: asyncpg.Record) -> asyncpg.Record:
    return await stack.pool.fetchrow(
        "SELECT status, refunded_cents, dispute_status FROM payments WHERE id = $1", paid["id"]
    )


async def _facts(stack: Stack, event_type: str) -> int:
    return int(
        await stack.pool.fetchval(
            "SELECT count(*) FROM outbox_events WHERE event_type = $1", event_type
        )
    )


def _task_statuses(stack: Stack, prefix: str) -> list[int | None]:
    return [d.status for d in stack.emulator.deliveries if d.task.startswith(prefix)]


async def _settled(stack: Stack) -> None:
    """Every task due so far has run to a 2xx."""

    async def idle() -> bool:
        done = {d.task for d in stack.emulator.deliveries if d.status and d.status < 300}
        due = [
            name.rsplit("/", 1)[-1]
            for name, task in stack.emulator.tasks.items()
            if task.schedule_time.timestamp() <= dt.datetime.now(dt.UTC).timestamp()
        ]
        return all(name in done for name in due)

    await eventually(idle)


def _staff_texts(stack: Stack, words: str) -> dict[str, int]:
    """How many texts containing ``words`` each staff number got."""
    return {
        staff: sum(1 for m in stack.graph.sent if m["to"] == staff and words in m["text"])
        for staff in STAFF_IDS
    }


async def _told_once(stack: Stack, words: str) -> None:
    """Each staff number got exactly one notice containing ``words``, and no task that
    could send another is still waiting."""

    async def both() -> bool:
        return all(n >= 1 for n in _staff_texts(stack, words).values())

    await eventually(both)
    await _settled(stack)
    assert _staff_texts(stack, words) == dict.fromkeys(STAFF_IDS, 1)


# ---- our refund --------------------------------------------------------------------------


async def test_refund_task_makes_one_stripe_refund_when_delivered_concurrently(
    stack: Stack,
) -> None:
    """A cancel's pending refund (R$200 of R$600), relayed from its outbox fact and
    delivered three times by Cloud Tasks while 10 more deliveries of the same task race it:
    exactly one refund at Stripe, with the row's idempotency key and metadata.refund_id;
    the row records it once, refunded_cents follows, the reservation stays confirmed."""
    cal = await _inn(stack)
    paid = await _confirmed(stack, cal)
    refund_id, _ = await _request_refund(stack, paid, 20000)
    stack.emulator.extra_deliveries = 2
    relayed, *direct = await asyncio.gather(
        worker_task(stack, "/tasks/outbox/relay", {}),
        *(worker_task(stack, REFUND_TASK, {"refund_id": refund_id}) for _ in range(10)),
    )
    assert relayed["outcome"] == "relayed"
    assert {r["outcome"] for r in direct} <= {"refunded", "already_refunded"}

    async def all_delivered() -> bool:
        return _task_statuses(stack, "refund-") == [200, 200, 200]

    await eventually(all_delivered)
    [refund] = stack.stripe.refunds
    assert refund["amount"] == 20000 and refund["metadata"] == {"refund_id": refund_id}
    assert refund["payment_intent"] == paid["payment_intent"]
    [row] = await _refund_rows(stack, paid)
    assert (row["status"], row["stripe_refund_id"]) == ("succeeded", refund["id"])
    assert (await _payment(stack, paid))["refunded_cents"] == 20000
    status = await stack.pool.fetchval(
        "SELECT status FROM reservations WHERE id = $1", paid["reservation_id"]
    )
    assert status == "confirmed"  # the cancel, not the refund, decides the reservation


async def test_refund_task_retried_after_stripe_errors_refunds_once(stack: Stack) -> None:
    """Stripe fails the refund beyond the library's own retries: the task answers 503, Cloud
    Tasks retries it, and the retry makes the one refund; the task then redelivered after
    success is a no-op."""
    cal = await _inn(stack)
    paid = await _confirmed(stack, cal)
    refund_id, _ = await _request_refund(stack, paid, 60000)
    stack.stripe.fail_next = 3
    stack.emulator.extra_deliveries = 1
    assert (await worker_task(stack, "/tasks/outbox/relay", {}))["outcome"] == "relayed"

    async def retried() -> bool:
        statuses = _task_statuses(stack, "refund-")
        return statuses.count(200) >= 2 and statuses[0] == 503

    await eventually(retried)
    assert len(stack.stripe.refunds) == 1
    [row] = await _refund_rows(stack, paid)
    assert row["status"] == "succeeded" and row["id"] == uuid.UUID(refund_id)
    assert (await _payment(stack, paid))["refunded_cents"] == 60000
    again = await worker_task(stack, REFUND_TASK, {"refund_id": refund_id})
    assert again["outcome"] == "already_refunded" and len(stack.stripe.refunds) == 1


async def test_own_refund_webhook_arriving_before_the_api_answer_is_recognised(
    stack: Stack,
) -> None:
    """Stripe's charge.refunded for our refund reaches the worker while our create call is
    still waiting for its answer: the listed refund's metadata names our row, so it is
    recorded there — no dashboard row, no staff notice — and the late API answer changes
    nothing."""
    cal = await _inn(stack)
    paid = await _confirmed(stack, cal)
    refund_id, _ = await _request_refund(stack, paid, 30000)
    seen: list[str] = []

    async def webhook_first(refund: dict[str, Any]) -> None:
        charge = stack.stripe.charges[refund["payment_intent"]]
        outcome, _ = await _deliver(stack, "charge.refunded", dict(charge))
        row = await stack.pool.fetchrow(
            "SELECT status, stripe_refund_id FROM refunds WHERE id = $1", uuid.UUID(refund_id)
        )
        seen.append(f"{outcome}:{row['status']}:{row['stripe_refund_id'] == refund['id']}")

    stack.stripe.on_refund = webhook_first
    result = await worker_task(stack, REFUND_TASK, {"refund_id": refund_id})

    assert seen == ["refunds_recorded:succeeded:True"]  # recorded before the API answered
    assert result["outcome"] == "refunded"
    [row] = await _refund_rows(stack, paid)
    assert (row["reason"], row["status"]) == ("cancellation", "succeeded")
    assert row["stripe_refund_id"] == stack.stripe.refunds[0]["id"]
    assert (await _payment(stack, paid))["refunded_cents"] == 30000
    assert await _facts(stack, "payment.refunded_outside") == 0
    await _settled(stack)
    assert _staff_texts(stack, "Reembolso") == dict.fromkeys(STAFF_IDS, 0)


async def test_refund_stripe_refuses_fails_the_row_and_tells_the_staff(stack: Stack) -> None:
    """When the charge was already refunded in full (from the dashboard), Stripe refuses our
    refund for good: the task answers 2xx (no retry storm), the row is failed and the staff
    are told once."""
    cal = await _inn(stack)
    paid = await _confirmed(stack, cal)
    stack.stripe.refund(paid["payment_intent"])
    refund_id, _ = await _request_refund(stack, paid, 30000)
    result = await worker_task(stack, REFUND_TASK, {"refund_id": refund_id})
    assert result["outcome"] == "refund_refused"
    again = await worker_task(stack, REFUND_TASK, {"refund_id": refund_id})
    assert again["outcome"] == "already_failed"
    [row] = await _refund_rows(stack, paid)
    assert (row["status"], row["stripe_refund_id"]) == ("failed", None)
    assert await _facts(stack, "refund.failed") == 1
    await _told_once(stack, "não fez o reembolso")


# ---- refunds made in Stripe ---------------------------------------------------------------


async def test_dashboard_refund_notifies_staff_once_under_fifty_redeliveries(
    stack: Stack, all_logs: pytest.LogCaptureFixture
) -> None:
    """A refund made in Stripe's dashboard for a live reservation: its charge.refunded posted
    50 times at once (each task also redelivered twice) records one stripe_dashboard row,
    one staff fact and one message per staff number; the reservation is not cancelled and
    refunded_cents follows the charge. A second partial refund is a second row and notice.
    No log line or row carries the payer's name or e-mail (the Charge has them)."""
    cal = await _inn(stack)
    paid = await _confirmed(stack, cal)
    stack.emulator.extra_deliveries = 2
    stack.stripe.refund(paid["payment_intent"], 15000)
    payload = event("charge.refunded", dict(stack.stripe.charges[paid["payment_intent"]]))
    responses = await asyncio.gather(*(stack.post_event(payload) for _ in range(50)))
    assert {r.status_code for r in responses} == {200}
    assert await _processed(stack, payload) == "refunded_outside"

    [row] = await _refund_rows(stack, paid)
    assert (row["reason"], row["status"], row["amount_cents"]) == (
        "stripe_dashboard",
        "succeeded",
        15000,
    )
    assert row["stripe_refund_id"] == stack.stripe.refunds[0]["id"]
    assert await _facts(stack, "payment.refunded_outside") == 1
    await _told_once(stack, "Reembolso de R$ 150,00 da reserva " + paid["code"])
    assert (await _payment(stack, paid))["refunded_cents"] == 15000
    reservation = await stack.pool.fetchval(
        "SELECT status FROM reservations WHERE id = $1", paid["reservation_id"]
    )
    assert reservation == "confirmed"

    stack.emulator.extra_deliveries = 0
    stack.stripe.refund(paid["payment_intent"])  # the rest: R$450
    outcome, _ = await _deliver(
        stack, "charge.refunded", dict(stack.stripe.charges[paid["payment_intent"]])
    )
    assert outcome == "refunded_outside"
    assert [r["amount_cents"] for r in await _refund_rows(stack, paid)] == [15000, 45000]
    assert (await _payment(stack, paid))["refunded_cents"] == 60000
    assert await _facts(stack, "payment.refunded_outside") == 2

    formatter = JsonFormatter()
    for record in all_logs.records:
        text = f"{formatter.format(record)} {vars(record)!r}"
        for secret in (*CUSTOMER.values(), *STAFF, *STAFF_IDS):
            assert secret not in text
    dump = (
        await rows_as_text(stack)
        + " "
        + str(await stack.pool.fetchval("SELECT string_agg(t::text, ' ') FROM refunds t"))
    )
    for secret in CUSTOMER.values():
        assert secret not in dump


# ---- disputes ---------------------------------------------------------------------------


async def test_dispute_created_then_closed_is_recorded_and_told_once(stack: Stack) -> None:
    """charge.dispute.created (posted 10 times at once) sets dispute_status and tells the
    staff once; charge.dispute.closed records the outcome and tells them once more; a
    created event that arrives after the close does not reopen it."""
    cal = await _inn(stack)
    paid = await _confirmed(stack, cal)
    dispute = stack.stripe.dispute(paid["payment_intent"])
    payload = event("charge.dispute.created", dispute)
    responses = await asyncio.gather(*(stack.post_event(payload) for _ in range(10)))
    assert {r.status_code for r in responses} == {200}
    assert await _processed(stack, payload) == "dispute_recorded"
    assert (await _payment(stack, paid))["dispute_status"] == "needs_response"
    assert await _facts(stack, "payment.disputed") == 1
    await _told_once(stack, "Contestação (chargeback) de R$ 600,00 da reserva " + paid["code"])

    closed = stack.stripe.close_dispute(dispute["id"], "lost")
    outcome, _ = await _deliver(stack, "charge.dispute.closed", closed)
    assert outcome == "dispute_closed"
    assert (await _payment(stack, paid))["dispute_status"] == "lost"
    await _told_once(stack, "encerrada na Stripe: perdida")

    stale, _ = await _deliver(stack, "charge.dispute.created", dispute)  # a new event id
    assert stale == "dispute_stale"
    assert (await _payment(stack, paid))["dispute_status"] == "lost"
    assert await _facts(stack, "payment.disputed") == 1
    status = await stack.pool.fetchval(
        "SELECT status FROM reservations WHERE id = $1", paid["reservation_id"]
    )
    assert status == "confirmed"


@pytest.mark.parametrize(
    ("event_type", "make"),
    [
        (
            "charge.refunded",
            lambda pi: {
                "id": "ch_x",
                "object": "charge",
                "amount": 1000,
                "amount_refunded": 1000,
                "refunded": True,
                "payment_intent": pi,
                "currency": "brl",
                "metadata": {},
            },
        ),
        (
            "charge.dispute.created",
            lambda pi: {
                "id": "dp_x",
                "object": "dispute",
                "charge": "ch_x",
                "payment_intent": pi,
                "amount": 1000,
                "currency": "brl",
                "status": "needs_response",
                "reason": "fraudulent",
            },
        ),
    ],
    ids=["refund", "dispute"],
)
async def test_event_for_a_payment_we_do_not_have_is_acknowledged(
    stack: Stack, event_type: str, make: Callable[[str], dict[str, Any]]
) -> None:
    """An authentic charge or dispute event naming a payment intent that is not ours is
    recorded as unknown_payment and its task answers 2xx, so nothing retries it."""
    outcome, _ = await _deliver(stack, event_type, make(f"pi_{uuid.uuid4().hex[:24]}"))
    assert outcome == "unknown_payment"

    async def acknowledged() -> bool:
        return _task_statuses(stack, "stripe-") == [200]

    await eventually(acknowledged)
    assert await stack.pool.fetchval("SELECT count(*) FROM refunds") == 0


# ---- the dev commands ---------------------------------------------------------------------


async def test_dev_stripe_refund_and_dispute_deliver_signed_events(stack: Stack) -> None:
    """`dev stripe-refund PAYMENT_ID --amount N` refunds in the fake Stripe and delivers the
    signed charge.refunded; `dev stripe-dispute PAYMENT_ID` (then `--close won`) delivers
    the dispute's events; each prints one JSON object last, and the worker records them."""
    cal = await _inn(stack)
    paid = await _confirmed(stack, cal)
    code, refunded = await _cli(stack, "dev", "stripe-refund", str(paid["id"]), "--amount", "10000")
    assert code == 0, refunded
    assert refunded["event_type"] == "charge.refunded" and refunded["webhook_status"] == 200
    assert refunded["amount_refunded"] == 10000

    async def refunded_cents() -> bool:
        return (await _payment(stack, paid))["refunded_cents"] == 10000

    await eventually(refunded_cents)
    code, too_much = await _cli(stack, "dev", "stripe-refund", str(paid["id"]), "--amount", "90000")
    assert code == 1 and too_much["error"] == "bad_request"
    code, disputed = await _cli(stack, "dev", "stripe-dispute", str(paid["id"]))
    assert code == 0 and disputed["event_type"] == "charge.dispute.created"

    def dispute_is(status: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return bool((await _payment(stack, paid))["dispute_status"] == status)

        return check

    await eventually(dispute_is("needs_response"))
    code, closed = await _cli(stack, "dev", "stripe-dispute", str(paid["id"]), "--close", "won")
    assert code == 0 and closed["status"] == "won"
    await eventually(dispute_is("won"))
    code, unknown = await _cli(stack, "dev", "stripe-refund", str(uuid.uuid4()))
    assert code == 1 and unknown["error"] == "not_found"
