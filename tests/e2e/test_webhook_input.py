"""What the public Stripe webhook does with input that is not an authentic, current,
well-formed event: a 4xx, and nothing recorded or enqueued. An authentic event of a
type we do not handle is acknowledged and recorded as ignored, with no task."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import h11
import httpx
import orjson
import pytest

from app.dev.fake_stripe import event
from app.http.webhooks import STRIPE_MAX_BODY
from tests.e2e.conftest import Stack

Request = tuple[bytes, dict[str, str]]


def _session() -> dict[str, Any]:
    """A completed Checkout Session as Stripe sends it: accepted if it came signed."""
    return {
        "id": f"cs_test_{uuid.uuid4().hex}",
        "object": "checkout.session",
        "amount_total": 60000,
        "currency": "brl",
        "metadata": {"hold_id": str(uuid.uuid4())},
        "payment_intent": f"pi_{uuid.uuid4().hex[:24]}",
        "payment_status": "paid",
        "status": "complete",
    }


def _now() -> int:
    return int(time.time())


def _completed() -> bytes:
    return event("checkout.session.completed", _session())


def _signed(stack: Stack, payload: bytes, **sign: Any) -> Request:
    return payload, {
        "Content-Type": "application/json",
        "Stripe-Signature": stack.sign(payload, **sign),
    }


_DROP = object()


def _envelope(**changes: Any) -> bytes:
    """The completed event with top-level fields changed (or dropped, with _DROP)."""
    envelope = orjson.loads(_completed())
    for key, value in changes.items():
        if value is _DROP:
            del envelope[key]
        else:
            envelope[key] = value
    return orjson.dumps(envelope)


def _unsigned(stack: Stack) -> Request:
    return _completed(), {"Content-Type": "application/json"}


def _garbled(stack: Stack) -> Request:
    return _completed(), {"Content-Type": "application/json", "Stripe-Signature": "t=abc,v1=%%%"}


def _signed_then_edited(stack: Stack) -> Request:
    payload, headers = _signed(stack, _completed())
    return payload.replace(b"60000", b"00001"), headers


def _wrong_content_type(stack: Stack) -> Request:
    payload, headers = _signed(stack, _completed())
    return payload, {**headers, "Content-Type": "text/plain"}


def _no_content_type(stack: Stack) -> Request:
    payload, headers = _signed(stack, _completed())
    del headers["Content-Type"]
    return payload, headers


def _huge(stack: Stack) -> Request:
    envelope = orjson.loads(_completed())
    envelope["padding"] = "x" * (1024 * 1024)
    return _signed(stack, orjson.dumps(envelope))


BAD_INPUT: dict[str, tuple[Callable[[Stack], Request], int]] = {
    "no-signature": (_unsigned, 400),
    "garbled-signature": (_garbled, 400),
    "signature-only-v0": (
        lambda s: (_completed(), {"Content-Type": "application/json", "Stripe-Signature": "v0=1"}),
        400,
    ),
    "wrong-secret": (lambda s: _signed(s, _completed(), secret="whsec_not_ours"), 400),
    "body-edited-after-signing": (_signed_then_edited, 400),
    "expired-timestamp": (lambda s: _signed(s, _completed(), timestamp=_now() - 400), 400),
    "future-timestamp": (lambda s: _signed(s, _completed(), timestamp=_now() + 400), 400),
    "not-json": (lambda s: _signed(s, b"this is not json"), 400),
    "json-array": (lambda s: _signed(s, orjson.dumps([orjson.loads(_completed())])), 400),
    "json-string": (lambda s: _signed(s, b'"checkout.session.completed"'), 400),
    "no-id": (lambda s: _signed(s, _envelope(id=_DROP)), 400),
    "empty-id": (lambda s: _signed(s, _envelope(id="")), 400),
    "numeric-id": (lambda s: _signed(s, _envelope(id=12345)), 400),
    "overlong-id": (lambda s: _signed(s, _envelope(id="evt_" + "x" * 300)), 400),
    "no-type": (lambda s: _signed(s, _envelope(type=_DROP)), 400),
    "null-type": (lambda s: _signed(s, _envelope(type=None)), 400),
    "wrong-content-type": (_wrong_content_type, 415),
    "no-content-type": (_no_content_type, 415),
    "one-mebibyte": (_huge, 413),
}


async def _nothing_recorded(stack: Stack) -> None:
    assert await stack.pool.fetchval("SELECT count(*) FROM processed_events") == 0
    assert await stack.pool.fetchval("SELECT count(*) FROM payments") == 0
    assert stack.emulator.tasks == {}


def _no_leak(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    assert list(response.json()) == ["error"]


@pytest.mark.parametrize("case", list(BAD_INPUT))
async def test_bad_input_is_refused_and_nothing_recorded(stack: Stack, case: str) -> None:
    """Bad signature, stale or future timestamp, a body that is not an event object, the
    wrong media type or an oversized body: a 4xx with only {"error": code}, no receipt,
    no payment, no task."""
    build, status = BAD_INPUT[case]
    payload, headers = build(stack)
    async with httpx.AsyncClient(base_url=stack.public) as http:
        response = await http.post("/webhooks/stripe", content=payload, headers=headers)
    assert response.status_code == status, response.text
    _no_leak(response)
    await _nothing_recorded(stack)


async def _post_chunked_without_end(base: str, headers: dict[str, str], body: bytes) -> Any:
    """POST ``body`` as one chunk of a chunked request that never ends, then read the
    answer: a client streaming an unbounded body, with nothing unread left behind."""
    url = httpx.URL(base)
    assert url.port is not None
    reader, writer = await asyncio.open_connection(url.host, url.port)
    client = h11.Connection(h11.CLIENT)
    request = h11.Request(
        method="POST",
        target="/webhooks/stripe",
        headers=[("Host", url.netloc.decode()), ("Transfer-Encoding", "chunked"), *headers.items()],
    )
    writer.write(client.send(request) + client.send(h11.Data(data=body)))
    await writer.drain()
    client.receive_data(await reader.read())  # the server closes after answering
    writer.close()
    await writer.wait_closed()
    response, *rest = [e for e in iter(client.next_event, h11.NEED_DATA) if e is not h11.PAUSED]
    assert isinstance(response, h11.Response)
    return response.status_code, b"".join(e.data for e in rest if isinstance(e, h11.Data))


async def test_oversized_chunked_body_is_cut_off_at_the_cap(stack: Stack) -> None:
    """A body sent chunked (no Content-Length to refuse it by) is refused with 413 as soon
    as it streams past the cap, without waiting for its end; nothing is recorded."""
    payload, headers = _huge(stack)
    status, body = await _post_chunked_without_end(
        stack.public, headers, payload[: STRIPE_MAX_BODY + 1]
    )
    assert status == 413
    assert orjson.loads(body) == {"error": "payload_too_large"}
    await _nothing_recorded(stack)


async def test_body_just_under_the_cap_is_read(stack: Stack) -> None:
    """The cap refuses only what exceeds it: a signed body of STRIPE_MAX_BODY bytes is read
    and judged on its content (an unhandled type here, so acknowledged as ignored)."""
    base = _envelope(type="customer.created", padding="")
    payload = _envelope(type="customer.created", padding="x" * (STRIPE_MAX_BODY - len(base)))
    assert len(payload) == STRIPE_MAX_BODY
    response = await stack.post_event(payload)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "outcome": "ignored"}


async def test_authentic_event_of_unhandled_type_is_recorded_as_ignored(stack: Stack) -> None:
    """An authentic event of a type we do not act on is acknowledged (200, so Stripe stops
    retrying), recorded once as processed with outcome 'ignored', and creates no task,
    also when Stripe delivers it again."""
    payload = event("customer.created", {"id": "cus_test_1", "object": "customer"})
    first = await stack.post_event(payload)
    again = await stack.post_event(payload)
    for response in (first, again):
        assert response.status_code == 200, response.text
        assert response.json() == {"received": True, "outcome": "ignored"}
    rows = await stack.pool.fetch(
        "SELECT external_id, event_type, outcome, processed_at, enqueued_at, details"
        " FROM processed_events"
    )
    assert len(rows) == 1
    [row] = rows
    assert row["external_id"] == orjson.loads(payload)["id"]
    assert row["event_type"] == "customer.created"
    assert row["outcome"] == "ignored"
    assert row["processed_at"] is not None and row["enqueued_at"] is None
    assert stack.emulator.tasks == {}
