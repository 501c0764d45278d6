"""The pipeline around the calendar, broken on purpose: a poison outbox row, a backlog, a task
lost after its receipt was marked enqueued, a backlog of due holds, and the one correlation
id that must follow a payment and a message from webhook to reply."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import grpc
import orjson
import pytest
from google.cloud.tasks_v2 import CloudTasksAsyncClient
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcAsyncIOTransport

from app.dev.fake_stripe import event
from app.dev.postgres import free_port
from app.inventory.holds import HoldRequest
from app.inventory.stay import Stay
from app.logging import ContextFilter
from app.payments.booking import hold_and_checkout
from app.tasks.catalog import HOLDS_SWEEP
from app.tasks.outbox import relaying
from app.tasks.queue import TaskQueue
from tests.e2e.conftest import Stack, book, calendar, worker_task
from tests.e2e.test_commands import _cli
from tests.e2e.test_whatsapp_flow import replies, say
from tests.inventory.conftest import Calendar, make_calendar
from tests.support import eventually, hold_request


async def _outbox_row(stack: Stack, outbox_id: int) -> dict[str, object]:
    row = await stack.pool.fetchrow(
        "SELECT attempts, last_error, dead_at, enqueued_at,"
        " extract(epoch FROM next_attempt_at - now()) AS wait FROM outbox_events WHERE id = $1",
        outbox_id,
    )
    return dict(row)


async def _quote_and_link(stack: Stack, cal_start: dt.date, sender: str) -> str:
    """A guest asks, chooses and gets the payment link; returns the link's reply."""
    checkout = cal_start + dt.timedelta(days=2)
    await say(stack, f"Oi, quarto de {cal_start:%d/%m/%Y} a {checkout:%d/%m/%Y}, 2 pessoas", sender)
    assert "1. Std" in (await replies(stack, 1, sender))[0]
    await say(stack, "quero o 1", sender)
    link = (await replies(stack, 2, sender))[1]
    assert re.search(r"cs_\w+", link), link
    return link


def _expire_task_exists(stack: Stack, hold_id: object) -> bool:
    return any(name.endswith(f"/expire-{hold_id}") for name in stack.emulator.tasks)


async def test_a_poison_outbox_row_stalls_nothing_and_goes_dead(stack: Stack) -> None:
    """An outbox row that can never be relayed (a hold.created without its expiry) fails
    alone: every relay answers 200, a guest's reply, link and expire task still flow, its
    attempts back off exponentially, after 10 it is dead; `ops outbox-dead` lists it (exit
    1); once its cause is fixed `ops outbox-retry` relays it."""
    poison = await stack.pool.fetchval(
        "INSERT INTO outbox_events (event_type, aggregate_type, aggregate_id, payload,"
        " correlation_id) VALUES ('hold.created', 'hold', 'x', $1, 'test') RETURNING id",
        {"hold_id": str(uuid.uuid4())},
    )
    cal = await calendar(stack)
    for attempt in range(1, 11):
        assert await worker_task(stack, "/tasks/outbox/relay", {}) == {
            "outcome": "relayed",
            "settled": 0,
        }
        row = await _outbox_row(stack, poison)
        assert row["attempts"] == attempt and "KeyError" in str(row["last_error"])
        if attempt < 10:
            assert row["dead_at"] is None
            expected = min(3600, 5 * 2 ** (attempt - 1))
            assert expected - 2 < float(row["wait"]) <= expected  # type: ignore[arg-type]
            await stack.pool.execute(  # its backoff has passed
                "UPDATE outbox_events SET next_attempt_at = now() WHERE id = $1", poison
            )
        if attempt == 3:  # meanwhile a guest books: reply, link and expire task go out
            await _quote_and_link(stack, cal.start, "5511911112222")
            hold_id = await stack.pool.fetchval("SELECT id FROM holds")
            assert _expire_task_exists(stack, hold_id)
            assert (await worker_task(stack, "/tasks/holds/sweep", {}))["outcome"] == "swept"
    assert (await _outbox_row(stack, poison))["dead_at"] is not None
    assert await worker_task(stack, "/tasks/outbox/relay", {}) == {
        "outcome": "relayed",
        "settled": 0,
    }
    assert (await _outbox_row(stack, poison))["attempts"] == 10  # dead rows are left alone

    code, found = await _cli(stack, "ops", "outbox-dead")
    assert code == 1 and found == {"check": "outbox-dead", "found": 1}
    code, retried = await _cli(stack, "ops", "outbox-retry", str(poison))
    assert code == 1 and retried["outcome"] == "failed"  # the cause is still there

    hold_id = uuid.uuid4()
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    await stack.pool.execute(
        "UPDATE outbox_events SET payload = $2 WHERE id = $1",
        poison,
        {"hold_id": str(hold_id), "expires_at": expires},
    )
    code, retried = await _cli(stack, "ops", "outbox-retry", str(poison))
    assert code == 0 and retried["outcome"] == "enqueued"
    assert _expire_task_exists(stack, hold_id)
    code, found = await _cli(stack, "ops", "outbox-dead")
    assert code == 0 and found == {"check": "outbox-dead", "found": 0}


async def test_a_backlog_never_delays_a_new_guests_link(stack: Stack) -> None:
    """With 5,000 outbox rows waiting for the scheduled relay, a new guest's replies, payment
    link and expire task are enqueued by the relay right after their own commit."""
    await stack.pool.execute(
        "INSERT INTO outbox_events (event_type, aggregate_type, aggregate_id, payload,"
        " correlation_id, next_attempt_at)"
        " SELECT 'hold.expired', 'hold', g::text, jsonb_build_object('hold_id', g::text),"
        " 'backlog', now() - interval '1 hour' FROM generate_series(1, 5000) AS g"
    )
    cal = await calendar(stack)
    await _quote_and_link(stack, cal.start, "5511933334444")
    assert _expire_task_exists(stack, await stack.pool.fetchval("SELECT id FROM holds"))
    waiting = await stack.pool.fetchval(
        "SELECT count(*) FROM outbox_events"
        " WHERE enqueued_at IS NULL AND correlation_id = 'backlog'"
    )
    assert waiting == 5000  # nobody waited for them

    settled = await worker_task(stack, "/tasks/outbox/relay", {})
    assert settled == {"outcome": "relayed", "settled": 5000}


async def test_a_relay_failure_after_commit_is_not_the_callers_error(stack: Stack) -> None:
    """With Cloud Tasks unreachable, a hold and its Checkout Session still succeed: the
    relay after the commit fails quietly, the row waits with its attempt counted, and the
    scheduled relay hands it over once the queue is back."""
    unreachable = TaskQueue(replace(stack.queue.config, emulator_host=f"127.0.0.1:{free_port()}"))
    cal = await calendar(stack)
    try:
        async with relaying(stack.pool, unreachable):
            booking = await hold_and_checkout(
                stack.pool, stack.client, stack.settings, _request(cal)
            )
    finally:
        await unreachable.close()
    assert booking.checkout.url
    row = await stack.pool.fetchrow(
        "SELECT id, attempts, last_error, dead_at FROM outbox_events"
        " WHERE event_type = 'hold.created'"
    )
    assert row["attempts"] == 1 and "Unavailable" in row["last_error"] and not row["dead_at"]
    await stack.pool.execute("UPDATE outbox_events SET next_attempt_at = now()")
    assert (await worker_task(stack, "/tasks/outbox/relay", {}))["settled"] == 1
    assert _expire_task_exists(stack, booking.hold.id)


def _request(cal: Calendar) -> HoldRequest:
    stay = Stay(cal.start, cal.start + dt.timedelta(days=1), 2)
    return hold_request(cal.property.id, stay, ((cal.room_type_ids["std"], 1),), uuid.uuid4().hex)


# ---- a task lost after its receipt was marked enqueued ---------------------------------


@pytest.fixture
async def tasks_client(stack: Stack) -> AsyncIterator[CloudTasksAsyncClient]:
    """The real Cloud Tasks client, to do to the emulator what an operator or an outage does."""
    channel = grpc.aio.insecure_channel(stack.emulator.host)
    client = CloudTasksAsyncClient(transport=CloudTasksGrpcAsyncIOTransport(channel=channel))
    try:
        yield client
    finally:
        await client.transport.close()


async def _paid_event_whose_task_is_lost(
    stack: Stack, client: CloudTasksAsyncClient, *, lose: bool = True
) -> bytes:
    """A paid checkout whose event was acknowledged (receipt marked enqueued) and whose task
    then vanished from the queue (``lose``) or still waits in it; 11 minutes ago."""
    booking = await book(stack, await calendar(stack))
    payload = event("checkout.session.completed", stack.stripe.complete(booking.checkout.id))
    stack.emulator.pause("webhooks")
    response = await stack.post_event(payload)
    assert response.status_code == 200 and response.json()["outcome"] == "enqueued"
    name = await stack.pool.fetchval("SELECT task_name FROM processed_events")
    parent = f"projects/{stack.settings.tasks_project}/locations/{stack.settings.tasks_location}"
    if lose:
        await client.delete_task(name=f"{parent}/queues/webhooks/tasks/{name}")
        stack.emulator.resume("webhooks")
    await stack.pool.execute(
        "UPDATE processed_events SET received_at = received_at - interval '11 minutes',"
        " enqueued_at = enqueued_at - interval '11 minutes'"
    )
    return payload


async def _reservations(stack: Stack) -> int:
    return int(await stack.pool.fetchval("SELECT count(*) FROM reservations"))


async def _processed(stack: Stack) -> bool:
    return bool(await stack.pool.fetchval("SELECT processed_at IS NOT NULL FROM processed_events"))


async def test_the_redrive_recovers_a_lost_task_once(
    stack: Stack, tasks_client: CloudTasksAsyncClient
) -> None:
    """A paid checkout whose task was lost: `ops stale-receipts` and `ops
    payments-without-reservation` show it (exit 1); the scheduled re-drive finds Cloud
    Tasks has no such task and enqueues generation 1; exactly one reservation; both checks
    clean after; a second re-drive does nothing."""
    await _paid_event_whose_task_is_lost(stack, tasks_client)
    for check in ("stale-receipts", "payments-without-reservation"):
        code, found = await _cli(stack, "ops", check)
        assert code == 1 and found == {"check": check, "found": 1}, check

    assert await worker_task(stack, "/tasks/receipts/redrive", {}) == {
        "outcome": "redriven",
        "redriven": 1,
    }
    await eventually(lambda: _processed(stack))
    assert await _reservations(stack) == 1
    event_id = await stack.pool.fetchval("SELECT external_id FROM processed_events")
    assert any(name.endswith(f"/stripe-g1-{event_id}") for name in stack.emulator.tasks)
    for check in ("stale-receipts", "payments-without-reservation"):
        code, found = await _cli(stack, "ops", check)
        assert code == 0 and found == {"check": check, "found": 0}, check
    assert await worker_task(stack, "/tasks/receipts/redrive", {}) == {"outcome": "redriven"}


async def test_a_provider_redelivery_recovers_a_lost_task_once(
    stack: Stack, tasks_client: CloudTasksAsyncClient
) -> None:
    """Stripe redelivering (50 times at once) an event whose task was lost is not answered
    "duplicate" and forgotten: the lost task is enqueued again once, one reservation."""
    payload = await _paid_event_whose_task_is_lost(stack, tasks_client)
    answers = await asyncio.gather(*(stack.post_event(payload) for _ in range(50)))
    assert {a.status_code for a in answers} == {200}
    outcomes = sorted(a.json()["outcome"] for a in answers)
    assert outcomes.count("re-enqueued") == 1, outcomes
    await eventually(lambda: _processed(stack))
    assert await _reservations(stack) == 1
    generation = await stack.pool.fetchval("SELECT reprocess_generation FROM processed_events")
    assert generation == 1


async def test_a_receipt_lost_five_times_is_left_to_an_operator(
    stack: Stack, tasks_client: CloudTasksAsyncClient
) -> None:
    """After five re-drives a receipt is not re-driven again (a fault to look at): it stays
    in `ops stale-receipts` until `ops reprocess` forces it through, once."""
    await _paid_event_whose_task_is_lost(stack, tasks_client)
    await stack.pool.execute("UPDATE processed_events SET reprocess_generation = 5")
    assert await worker_task(stack, "/tasks/receipts/redrive", {}) == {
        "outcome": "redriven",
        "exhausted": 1,
    }
    code, found = await _cli(stack, "ops", "stale-receipts")
    assert code == 1 and found["found"] == 1
    code, done = await _cli(stack, "ops", "reprocess", "--source", "stripe")
    assert code == 0 and done["reprocessed"] == 1
    await eventually(lambda: _processed(stack))
    assert await _reservations(stack) == 1


async def test_a_task_waiting_in_its_queue_is_not_redriven(
    stack: Stack, tasks_client: CloudTasksAsyncClient
) -> None:
    """A stale receipt whose task Cloud Tasks still holds (waiting to be dispatched) is
    left alone by the re-drive and by a redelivery; once dispatched it books once."""
    payload = await _paid_event_whose_task_is_lost(stack, tasks_client, lose=False)
    assert await worker_task(stack, "/tasks/receipts/redrive", {}) == {
        "outcome": "redriven",
        "alive": 1,
    }
    assert (await stack.post_event(payload)).json()["outcome"] == "duplicate"
    assert await stack.pool.fetchval("SELECT reprocess_generation FROM processed_events") == 0
    stack.emulator.resume("webhooks")
    await eventually(lambda: _processed(stack))
    assert await _reservations(stack) == 1


# ---- the sweep keeps up ----------------------------------------------------------------


async def test_ten_thousand_due_holds_drain_through_continuations(stack: Stack) -> None:
    """10,000 overdue holds: one scheduled sweep and the continuations it enqueues expire
    every one of them; the night's held counter returns to exactly 0."""
    async with stack.pool.acquire() as conn:
        cal = await make_calendar(conn, [("std", 2, 10_000, 30000)], days=2)
    room, night = cal.room_type_ids["std"], cal.start
    async with stack.pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "WITH h AS (INSERT INTO holds (property_id, checkin, checkout, guests, total_cents,"
            " currency, expires_at, create_idempotency_key, request_fingerprint,"
            " correlation_id, created_at)"
            " SELECT $1, $2::date, $2::date + 1, 1, 30000, 'BRL', now() - interval '1 minute',"
            " 'bulk-' || g, 'bulk', 'bulk-' || g, now() - interval '1 hour'"
            " FROM generate_series(1, 10000) AS g RETURNING id)"
            " INSERT INTO hold_nights (hold_id, room_type_id, date, qty)"
            " SELECT id, $3, $2, 1 FROM h",
            cal.property.id,
            night,
            room,
        )
        await conn.execute(
            "UPDATE ari_days SET inv_held = 10000 WHERE room_type_id = $1 AND date = $2",
            room,
            night,
        )

    await stack.queue.enqueue(HOLDS_SWEEP, HOLDS_SWEEP.task_name("scheduled-1"), {})

    async def chain_done() -> bool:
        return not any("/tasks/sweep-" in name for name in stack.emulator.live)

    await eventually(chain_done, within=120, interval=0.2)
    assert await stack.pool.fetchval("SELECT count(*) FROM holds WHERE status = 'active'") == 0
    sweeps = {d.task: d.status for d in stack.emulator.deliveries if d.task.startswith("sweep-")}
    # The scheduled one, four continuations of 2,000 each, and one that found nothing.
    assert len(sweeps) == 6 and set(sweeps.values()) == {200}, sweeps
    held = await stack.pool.fetchval(
        "SELECT inv_held FROM ari_days WHERE room_type_id = $1 AND date = $2", room, night
    )
    assert held == 0
    assert (
        await stack.pool.fetchval(
            "SELECT count(*) FROM outbox_events WHERE event_type = 'hold.expired'"
            " AND correlation_id LIKE 'bulk-%'"
        )
        == 10_000
    )


# ---- one correlation id from webhook to reply ------------------------------------------


def _logged_with(all_logs: pytest.LogCaptureFixture, cid: str) -> set[str]:
    return {
        r.getMessage()
        for r in all_logs.records
        if getattr(r, "correlation_id", None) == cid
        or getattr(r, "linked_correlation_id", None) == cid
    }


@pytest.fixture
def correlated_logs(all_logs: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Captured records carry the correlation id of their context, as the JSON lines do."""
    all_logs.handler.addFilter(ContextFilter())
    return all_logs


async def test_one_correlation_id_follows_a_message_and_its_payment(
    stack: Stack, correlated_logs: pytest.LogCaptureFixture
) -> None:
    """The id the guest's WhatsApp message got at the webhook is on its receipt, its task's
    lines, the hold, every outbox row and reply of the turn and their send tasks; the
    Checkout Session carries it, so the Stripe event's receipt, task, reservation,
    confirmation outbox rows, message and send carry it too, and the Stripe webhook's own
    line names it as linked_correlation_id."""
    cal = await calendar(stack)
    await _quote_and_link(stack, cal.start, "5511955556666")
    cid = await stack.pool.fetchval("SELECT correlation_id FROM holds")
    assert cid
    link_receipt = await stack.pool.fetchval(
        "SELECT correlation_id FROM processed_events ORDER BY received_at DESC LIMIT 1"
    )
    assert link_receipt == cid

    session_id = re.search(r"cs_\w+", (await replies(stack, 2, "5511955556666"))[1])
    assert session_id is not None
    assert stack.stripe.sessions[session_id.group(0)]["metadata"]["correlation_id"] == cid
    payload = event("checkout.session.completed", stack.stripe.complete(session_id.group(0)))
    answer = await stack.post_event(payload, **{"X-Correlation-Id": "stripe-delivery-1"})
    assert answer.status_code == 200
    assert "Código" in (await replies(stack, 3, "5511955556666"))[2]
    await eventually(
        lambda: stack.pool.fetchval(
            "SELECT bool_and(status <> 'queued') FROM messages WHERE direction = 'out'"
        )
    )

    stripe_id = orjson.loads(payload)["id"]
    assert (
        await stack.pool.fetchval(
            "SELECT correlation_id FROM processed_events WHERE external_id = $1", stripe_id
        )
        == cid
    )
    assert await stack.pool.fetchval("SELECT correlation_id FROM reservations") == cid
    # From the hold on (the "quero o 1" turn), every row is this story's.
    outbox = await stack.pool.fetch(
        "SELECT event_type, correlation_id FROM outbox_events WHERE id >="
        " (SELECT id FROM outbox_events WHERE event_type = 'hold.created')"
    )
    assert {r["event_type"] for r in outbox} >= {
        "hold.created",
        "message.queued",
        "reservation.confirmed",
    }
    assert {r["correlation_id"] for r in outbox} == {cid}
    # The first message and its quote were a story of their own (the webhook that received
    # it); the choice, its link and the confirmation are the hold's.
    ids = [
        m["correlation_id"]
        for m in await stack.pool.fetch("SELECT correlation_id FROM messages ORDER BY seq")
    ]
    assert ids[0] == ids[1] != cid and ids[2:] == [cid, cid, cid], ids

    said = _logged_with(correlated_logs, cid)
    assert {"http_request", "stripe_event_processed", "whatsapp_send"} <= said, said
    stripe_line = [
        r
        for r in correlated_logs.records
        if r.getMessage() == "http_request" and getattr(r, "path", "") == "/webhooks/stripe"
    ]
    assert stripe_line and stripe_line[0].correlation_id == "stripe-delivery-1"  # type: ignore[attr-defined]
    assert stripe_line[0].linked_correlation_id == cid  # type: ignore[attr-defined]
