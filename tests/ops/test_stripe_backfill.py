"""`ops stripe-backfill` (runbook §7.3): Stripe events whose delivery was refused are listed
through the Events API (the fake serves it in Stripe's wire format) and fed through the
webhook's own receipt path — once: a second run records nothing."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator

import orjson
import pytest
import stripe

from app.dev.fake_stripe import FakeStripe
from app.dev.postgres import free_port
from app.errors import BadRequest
from app.ops import stripe_backfill
from app.ops.pause import pause_provider, resume_provider
from app.ops.stripe_backfill import StripePaused, backfill, parse_since
from tests.e2e.conftest import STRIPE_KEY, Stack, book, calendar, running_stack
from tests.e2e.test_commands import _cli
from tests.inventory.conftest import make_calendar
from tests.ops.test_pause import public_sees
from tests.support import eventually

COMPLETED = "checkout.session.completed"


@pytest.fixture
async def stack(db_url: str) -> AsyncIterator[Stack]:
    async with running_stack(db_url) as running:
        yield running


async def _receipts(stack: Stack) -> int:
    return int(await stack.pool.fetchval("SELECT count(*) FROM processed_events"))


async def _converted(stack: Stack, hold_id: object) -> bool:
    status = await stack.pool.fetchval("SELECT status FROM holds WHERE id = $1", hold_id)
    return bool(status == "converted")


async def _refused_while_paused(stack: Stack) -> tuple[object, str]:
    """A paid checkout whose event the paused webhook refused (Stripe saw the 503): the
    hold's id and the event's id."""
    cal = await calendar(stack)
    booking = await book(stack, cal)
    payload = stack.stripe.new_event(COMPLETED, stack.stripe.complete(booking.checkout.id))
    async with stack.pool.acquire() as conn:
        await pause_provider(conn, "stripe", "cli:test", execute=True)
    await public_sees(stack, 503, time.monotonic())
    refused = await stack.post_event(payload)
    assert refused.status_code == 503
    event_id = orjson.loads(payload)["id"]
    stack.stripe.delivered(event_id, refused.status_code)
    async with stack.pool.acquire() as conn:
        await resume_provider(conn, "stripe", "cli:test", execute=True)
    await public_sees(stack, 400, time.monotonic())  # a bad signature's answer: not paused
    return booking.hold.id, event_id


async def test_backfill_recovers_a_refused_event_once(stack: Stack) -> None:
    """Listed (exit 1: one event is missing) without --apply, nothing recorded; applied,
    the event gets its receipt and task and the hold converts; a second run lists it as
    received and records nothing. An event the webhook took is never listed."""
    hold_id, event_id = await _refused_while_paused(stack)
    async with stack.pool.acquire() as conn:  # a second inn: the bookings never compete
        other_inn = await make_calendar(conn, [("std", 2, 1, 30000)], code="other-inn", days=10)
    other = await book(stack, other_inn)
    delivered = stack.stripe.new_event(COMPLETED, stack.stripe.complete(other.checkout.id))
    answer = await stack.post_event(delivered)
    stack.stripe.delivered(orjson.loads(delivered)["id"], answer.status_code)
    await eventually(lambda: _converted(stack, other.hold.id))
    before = await _receipts(stack)

    code, listed = await _cli(stack, "ops", "stripe-backfill", "--since", "1h")

    assert code == 1
    assert listed == {
        "check": "stripe-backfill",
        "since": "1h",
        "undelivered": 1,
        "missing": 1,
        "recorded": 0,
        "applied": False,
    }
    assert await _receipts(stack) == before

    code, applied = await _cli(stack, "ops", "stripe-backfill", "--since", "1h", "--apply")

    assert code == 0 and (applied["missing"], applied["recorded"]) == (1, 1)
    await eventually(lambda: _converted(stack, hold_id))
    receipt = await stack.pool.fetchrow(
        "SELECT event_type, task_name FROM processed_events WHERE external_id = $1", event_id
    )
    assert tuple(receipt) == (COMPLETED, f"stripe-{event_id}")

    code, again = await _cli(stack, "ops", "stripe-backfill", "--since", "1h", "--apply")

    assert code == 0 and (again["undelivered"], again["missing"], again["recorded"]) == (1, 0, 0)
    assert await _receipts(stack) == before + 1


async def test_backfill_pages_through_every_event_in_order_and_refuses_while_paused(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one event per page, every undelivered event is still found, oldest first, each
    with its receipt state; applied while Stripe is paused, it refuses and records nothing."""
    monkeypatch.setattr(stripe_backfill, "PAGE_SIZE", 1)
    _, first = await _refused_while_paused(stack)
    refund_event = stack.stripe.new_event("charge.refunded", {"id": "ch_x", "object": "charge"})
    ignored = stack.stripe.new_event("customer.created", {"id": "cus_x", "object": "customer"})
    since = dt.timedelta(hours=1)

    listed = await backfill(stack.pool, stack.queue, stack.client, stack.settings, since)

    assert [(item["event_id"], item["received"]) for item in listed] == [
        (first, False),
        (orjson.loads(refund_event)["id"], False),
    ]
    assert orjson.loads(ignored)["id"] not in {item["event_id"] for item in listed}
    async with stack.pool.acquire() as conn:
        await pause_provider(conn, "stripe", "cli:test", execute=True)
    with pytest.raises(StripePaused):
        await backfill(stack.pool, stack.queue, stack.client, stack.settings, since, execute=True)
    assert await _receipts(stack) == 0


def test_since_is_a_short_duration_within_stripes_30_days() -> None:
    """3d, 12h and 90m are read; anything else, or more than Stripe keeps, is refused."""
    assert parse_since("3d") == dt.timedelta(days=3)
    assert parse_since("12h") == dt.timedelta(hours=12)
    assert parse_since("90m") == dt.timedelta(minutes=90)
    for refused in ("31d", "3", "0d", "-1d", "3 d", "1w"):
        with pytest.raises(BadRequest):
            parse_since(refused)


async def test_fake_events_api_filters_and_pages_as_stripe_does() -> None:
    """Through the real library: newest first, filtered by delivery_success, created[gte]
    and types, paged with has_more/starting_after."""
    fake = FakeStripe(port=free_port(), api_key=STRIPE_KEY)
    await fake.start()
    http = stripe.HTTPXClient(timeout=5)
    client = stripe.StripeClient(
        STRIPE_KEY, base_addresses={"api": fake.base_url}, http_client=http
    )
    try:
        made = [orjson.loads(fake.new_event(COMPLETED, {"id": f"cs_{i}"}))["id"] for i in range(5)]
        fake.events[0]["created"] -= 7200  # two hours old
        fake.delivered(made[1], 200)
        fake.delivered(made[2], 500)
        fake.new_event("charge.refunded", {"id": "ch_1"})

        async def listed(**params: object) -> list[str]:
            page = await client.v1.events.list_async(params={"limit": 2, **params})
            return [e.id async for e in page.auto_paging_iter()]

        cutoff = int(dt.datetime.now(dt.UTC).timestamp()) - 3600
        found = await listed(delivery_success=False, created={"gte": cutoff}, types=[COMPLETED])
        assert found == [made[4], made[3], made[2]]
        assert await listed(delivery_success=True) == [made[1]]
        first = await client.v1.events.list_async(params={"limit": 2})
        assert first.has_more and len(first.data) == 2
    finally:
        await http.close_async()
        await fake.stop()
