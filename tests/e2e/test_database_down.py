"""The database down, through a TCP proxy the test cuts (never the shared server): every
webhook answers 503 with Retry-After and writes nothing, /ready answers 503 at once; once
the proxy is back /ready is 200 again, the providers' redeliveries are acknowledged, and
every acknowledged event is processed."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
import pytest

from app.dev.fake_evolution import FakeEvolution, upsert_event
from app.dev.fake_graph import inbound_envelope
from app.dev.fake_stripe import event
from app.dev.postgres import free_port
from app.inventory.setup import import_property
from app.pii import pii_keys
from app.settings import Secret
from tests.e2e.conftest import (
    API_KEY,
    INSTANCE,
    SECRET,
    Stack,
    book,
    calendar,
    evolution_spec,
    running_stack,
)
from tests.e2e.test_whatsapp_flow import _settled
from tests.support import TcpProxy, eventually

META_GUEST = "5511944443333"
EVO_GUEST = "5511933332222"


def _through(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the proxy's (user, password and
    database kept as they are)."""
    parts = urlsplit(url)
    userinfo, at, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo}{at}127.0.0.1:{port}"))


@pytest.fixture
async def proxy(db_url: str) -> AsyncIterator[TcpProxy]:
    """A proxy in front of this test's database server, listening."""
    parts = urlsplit(db_url)
    running = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await running.start()
    try:
        yield running
    finally:
        await running.cut()  # also fine when already cut


@pytest.fixture
async def proxied_stack(db_url: str, proxy: TcpProxy) -> AsyncIterator[Stack]:
    """The whole stack with both apps on the database through the proxy; ``stack.pool``
    (the test's own view) connects directly, so the test can look while the apps cannot."""
    async with running_stack(db_url, database_url=Secret(_through(db_url, proxy.port))) as stack:
        assert stack.settings.database_url.reveal() != db_url
        yield stack


@pytest.fixture
async def gateway(proxied_stack: Stack) -> AsyncIterator[FakeEvolution]:
    """An inn on an Evolution gateway (a local fake), as tests/e2e/conftest.py's."""
    fake = FakeEvolution(free_port(), INSTANCE, API_KEY)
    await fake.start()
    async with proxied_stack.pool.acquire() as conn:
        await import_property(
            conn, evolution_spec(fake.base_url), pii=pii_keys(proxied_stack.settings)
        )
    try:
        yield fake
    finally:
        await fake.stop()


async def _deliver(
    stack: Stack, stripe_event: bytes, envelope: dict[str, Any], evolution: dict[str, Any]
) -> dict[str, httpx.Response]:
    """One delivery of each provider's event, signed as that provider signs it (the
    Stripe signature is made afresh, as on a real redelivery)."""
    async with httpx.AsyncClient(base_url=stack.public) as http:
        evolution_answer = await http.post(
            "/webhooks/whatsapp/evolution",
            content=orjson.dumps(evolution),
            headers={"Content-Type": "application/json", "X-Webhook-Secret": SECRET},
        )
    return {
        "stripe": await stack.post_event(stripe_event),
        "meta": await stack.post_whatsapp(envelope),
        "evolution": evolution_answer,
    }


async def _written(stack: Stack) -> dict[str, int]:
    row = await stack.pool.fetchrow(
        "SELECT (SELECT count(*) FROM processed_events) AS processed_events,"
        " (SELECT count(*) FROM messages) AS messages,"
        " (SELECT count(*) FROM contacts) AS contacts,"
        " (SELECT count(*) FROM reservations) AS reservations"
    )
    return dict(row)


async def test_webhooks_answer_503_while_the_database_is_down_and_lose_nothing(
    proxied_stack: Stack, proxy: TcpProxy, gateway: FakeEvolution
) -> None:
    """With the apps' database connections cut: the signed Stripe event, the signed Meta
    envelope and the Evolution event each answer 503 with a Retry-After header and a JSON
    body of only an error code (no stack trace), nothing is written and no task is created;
    the public /ready answers 503 "unavailable" within 1 s. Once the proxy is restored,
    /ready answers 200 "ready", the same three deliveries answer 200, and every one of them
    is processed: the payment becomes a reservation and both guests get a reply."""
    stack = proxied_stack
    cal = await calendar(stack)
    booking = await book(stack, cal)
    await _settled(stack)  # the booking's own tasks ran before the database goes away
    checkout = cal.start + dt.timedelta(days=2)
    asked = f"Oi, tem quarto de {cal.start:%d/%m/%Y} a {checkout:%d/%m/%Y}, 2 pessoas?"
    stripe_event = event("checkout.session.completed", stack.stripe.complete(booking.checkout.id))
    envelope = inbound_envelope(f"pn-{cal.property.code}", META_GUEST, asked)
    evolution = upsert_event(INSTANCE, EVO_GUEST, "oi")
    async with httpx.AsyncClient(base_url=stack.public, timeout=5) as http:
        assert (await http.get("/ready")).status_code == 200
    before = await _written(stack)
    assert before["processed_events"] == 0 and before["reservations"] == 0
    tasks_before = set(stack.emulator.tasks)

    await proxy.cut()

    for provider, answer in (await _deliver(stack, stripe_event, envelope, evolution)).items():
        assert answer.status_code == 503, (provider, answer.text)
        assert int(answer.headers["retry-after"]) > 0, provider
        assert answer.headers["content-type"].startswith("application/json"), provider
        assert answer.json() == {"error": "service_unavailable"}, provider
        assert "Traceback" not in answer.text, provider
    async with httpx.AsyncClient(base_url=stack.public, timeout=5) as http:
        started = time.monotonic()
        down = await http.get("/ready")
        elapsed = time.monotonic() - started
        assert (await http.get("/health")).status_code == 200
    assert down.status_code == 503 and elapsed < 1.0, (down.text, elapsed)
    assert down.json()["status"] == "unavailable"
    assert down.json()["reason"] in ("database_unreachable", "database_timeout")
    assert await _written(stack) == before  # nothing was acknowledged, nothing written
    assert set(stack.emulator.tasks) == tasks_before
    assert stack.graph.sent == [] and gateway.sent == []

    await proxy.restore()

    async def ready() -> dict[str, Any] | None:
        async with httpx.AsyncClient(base_url=stack.public, timeout=5) as http:
            answer = await http.get("/ready")
        return answer.json() if answer.status_code == 200 else None

    assert (await eventually(ready))["status"] == "ready"
    for provider, answer in (await _deliver(stack, stripe_event, envelope, evolution)).items():
        assert answer.status_code == 200, (provider, answer.text)

    async def processed() -> list[tuple[str, str, str | None]]:
        rows = await stack.pool.fetch(
            "SELECT source, external_id, outcome FROM processed_events"
            " WHERE processed_at IS NOT NULL ORDER BY source, external_id"
        )
        found = [(r["source"], r["external_id"], r["outcome"]) for r in rows]
        return found if len(found) == 3 else []

    done = await eventually(processed, within=20)
    message_ids = {
        envelope["entry"][0]["changes"][0]["value"]["messages"][0]["id"],
        evolution["data"]["key"]["id"],
    }
    assert {(source, external_id) for source, external_id, _ in done} == {
        ("stripe", orjson.loads(stripe_event)["id"]),
        *(("whatsapp", message_id) for message_id in message_ids),
    }
    assert ("stripe", orjson.loads(stripe_event)["id"], "converted") in done
    assert await stack.pool.fetchval("SELECT count(*) FROM reservations") == 1

    async def replied() -> bool:
        return any(m["to"] == META_GUEST for m in stack.graph.sent) and any(
            m["to"] == EVO_GUEST for m in gateway.sent
        )

    await eventually(replied, within=20)
