"""`ops pause` / `ops resume`: a provider's webhooks answer 503 with Retry-After within 5 s
of the command and write nothing; after resume the provider's redelivery is processed, so
nothing is lost. Every applied command is audited; a failed read of the pause state never
shuts every webhook."""

from __future__ import annotations

import getpass
import logging
import time
from collections.abc import AsyncIterator

import asyncpg
import httpx
import orjson
import pytest

from app import db
from app.dev.fake_evolution import FakeEvolution, upsert_event
from app.dev.fake_graph import inbound_envelope
from app.dev.fake_stripe import event
from app.ops.pause import PauseCache, pause_provider, resume_provider
from tests.e2e.conftest import (  # noqa: F401
    INSTANCE,
    SECRET,
    VERIFY_TOKEN,
    Stack,
    all_logs,
    book,
    calendar,
    gateway,
    running_stack,
)
from tests.e2e.test_commands import _cli
from tests.support import eventually

# What the command promises: every public instance sees it within this.
VISIBLE_WITHIN = 5.0
# Written by a webhook that took something: none may change while its provider is paused.
WRITTEN = "SELECT (SELECT count(*) FROM processed_events), (SELECT count(*) FROM messages)"


@pytest.fixture
async def stack(db_url: str) -> AsyncIterator[Stack]:
    async with running_stack(db_url) as running:
        yield running


async def _stripe_probe(stack: Stack) -> int:
    """A delivery with a wrong signature: 400 (nothing written) unless Stripe is paused."""
    async with httpx.AsyncClient(base_url=stack.public) as http:
        response = await http.post(
            "/webhooks/stripe",
            content=b"{}",
            headers={"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=bad"},
        )
    return response.status_code


async def public_sees(stack: Stack, status: int, started: float) -> float:
    """Poll until the public role answers a badly signed Stripe delivery ``status`` (503
    while paused, else 400), within 5 s: the seconds since ``started``."""

    async def seen() -> bool:
        return await _stripe_probe(stack) == status

    await eventually(seen, within=VISIBLE_WITHIN)
    return time.monotonic() - started


async def _converted(stack: Stack, hold_id: object) -> bool:
    return await stack.pool.fetchval("SELECT status FROM holds WHERE id = $1", hold_id) == (
        "converted"
    )


async def test_paused_stripe_answers_503_writes_nothing_and_its_redelivery_books_after_resume(
    stack: Stack,
    all_logs: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    """Preview changes nothing; paused, a signed checkout.session.completed gets 503 with
    Retry-After (the probe sees it within 5 s, the server never restarted), no receipt, one
    log line and no traceback; WhatsApp keeps working. Resumed, Stripe's redelivery of the
    same event is taken and the hold converts. Both commands are audited as the operator."""
    cal = await calendar(stack)
    booking = await book(stack, cal)
    payload = event("checkout.session.completed", stack.stripe.complete(booking.checkout.id))

    code, preview = await _cli(stack, "ops", "pause", "stripe", "--reason", "SEV0 drill")
    assert code == 0 and preview["outcome"] == "preview" and preview["paused"] is None
    assert await stack.pool.fetchval("SELECT count(*) FROM provider_pauses") == 0

    assert await _stripe_probe(stack) == 400  # the public role has read the state: not paused
    code, paused = await _cli(stack, "ops", "pause", "stripe", "--reason", "SEV0 drill", "--apply")
    assert code == 0 and paused["outcome"] == "paused"
    assert await public_sees(stack, 503, time.monotonic()) < VISIBLE_WITHIN
    before = tuple(await stack.pool.fetchrow(WRITTEN))
    all_logs.clear()

    refused = await stack.post_event(payload)

    assert refused.status_code == 503 and refused.headers["retry-after"] == "60"
    assert refused.json() == {"error": "provider_paused"}
    assert tuple(await stack.pool.fetchrow(WRITTEN)) == before
    lines = [r for r in all_logs.records if r.name.startswith("app")]
    assert [(r.getMessage(), getattr(r, "reason", None)) for r in lines] == [
        ("http_request", "provider_paused")
    ]
    assert lines[0].exc_info is None
    async with httpx.AsyncClient(base_url=stack.public) as http:  # not paused: its own 401
        assert (await http.post("/webhooks/whatsapp/meta", content=b"{}")).status_code == 401

    code, resumed = await _cli(stack, "ops", "resume", "stripe", "--apply")
    assert code == 0 and resumed["outcome"] == "resumed"
    await public_sees(stack, 400, time.monotonic())

    redelivered = await stack.post_event(payload)  # Stripe retries with a fresh signature

    assert redelivered.status_code == 200, redelivered.text
    await eventually(lambda: _converted(stack, booking.hold.id))
    audit = await stack.pool.fetch(
        "SELECT property_id, actor, command, arguments, result FROM audit_log ORDER BY id"
    )
    assert [(a["property_id"], a["actor"], a["command"]) for a in audit] == [
        (None, f"cli:{getpass.getuser()}", "provider.pause"),
        (None, f"cli:{getpass.getuser()}", "provider.resume"),
    ]
    assert audit[0]["arguments"] == {"provider": "stripe", "reason": "SEV0 drill"}
    assert [a["result"]["outcome"] for a in audit] == ["paused", "resumed"]


async def test_paused_whatsapp_refuses_meta_and_evolution_but_not_the_handshake(
    stack: Stack,
    gateway: FakeEvolution,  # noqa: F811
) -> None:
    """Paused, Meta's signed message and an Evolution instance's event answer 503 with
    Retry-After and record nothing (no receipt, no status); Meta's subscription handshake
    still answers. Resumed, the same deliveries are taken: each message gets its receipt."""
    await calendar(stack)  # the inn of Meta's number pn-test-inn
    meta = inbound_envelope("pn-test-inn", "5511999990000", "oi, tem quarto?")
    evolution = upsert_event(INSTANCE, "5511988880000", "oi")
    async with stack.pool.acquire() as conn:
        await pause_provider(conn, "whatsapp", "cli:test", execute=True)
    before = tuple(await stack.pool.fetchrow(WRITTEN))

    async def meta_answer() -> int:
        return (await stack.post_whatsapp(meta)).status_code

    async def evolution_answer() -> int:
        async with httpx.AsyncClient(base_url=stack.public) as http:
            response = await http.post(
                "/webhooks/whatsapp/evolution",
                content=orjson.dumps(evolution),
                headers={"Content-Type": "application/json", "X-Webhook-Secret": SECRET},
            )
        assert response.status_code != 503 or response.headers["retry-after"] == "60"
        return response.status_code

    # A new stack reads the pause on its first request: no wait here.
    assert await meta_answer() == 503
    assert await evolution_answer() == 503
    async with httpx.AsyncClient(base_url=stack.public) as http:
        handshake = await http.get(
            "/webhooks/whatsapp/meta",
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": VERIFY_TOKEN,
                "hub.challenge": "c",
            },
        )
    assert handshake.status_code == 200 and handshake.text == "c"
    assert tuple(await stack.pool.fetchrow(WRITTEN)) == before

    async with stack.pool.acquire() as conn:
        await resume_provider(conn, "whatsapp", "cli:test", execute=True)

    async def taken() -> bool:
        return await meta_answer() == 200

    await eventually(taken, within=VISIBLE_WITHIN)
    assert await evolution_answer() == 200
    sources = await stack.pool.fetchval(
        "SELECT count(*) FROM processed_events WHERE source = 'whatsapp'"
    )
    assert sources == 2


async def test_pause_and_resume_are_idempotent_and_each_applied_one_is_audited(
    conn: asyncpg.Connection,
) -> None:
    """A second pause keeps the first (its actor and reason), a resume of a provider not
    paused changes nothing; a preview writes nothing, every applied command one audit row."""
    preview = await pause_provider(conn, "stripe", "cli:ana", "drill")
    assert preview["outcome"] == "preview" and preview["paused"] is None

    first = await pause_provider(conn, "stripe", "cli:ana", "drill", execute=True)
    again = await pause_provider(conn, "stripe", "cli:bruno", "other", execute=True)
    assert (first["outcome"], again["outcome"]) == ("paused", "already_paused")
    assert again["paused"]["paused_by"] == "cli:ana" and again["paused"]["reason"] == "drill"
    shown = await resume_provider(conn, "stripe", "cli:bruno")
    assert shown["outcome"] == "preview" and shown["paused"]["paused_by"] == "cli:ana"

    resumed = await resume_provider(conn, "stripe", "cli:bruno", execute=True)
    not_paused = await resume_provider(conn, "stripe", "cli:bruno", execute=True)

    assert (resumed["outcome"], not_paused["outcome"]) == ("resumed", "not_paused")
    assert await conn.fetchval("SELECT count(*) FROM provider_pauses") == 0
    audit = await conn.fetch("SELECT actor, command, result FROM audit_log ORDER BY id")
    assert [(a["actor"], a["command"], a["result"]["outcome"]) for a in audit] == [
        ("cli:ana", "provider.pause", "paused"),
        ("cli:bruno", "provider.pause", "already_paused"),
        ("cli:bruno", "provider.resume", "resumed"),
        ("cli:bruno", "provider.resume", "not_paused"),
    ]


async def test_pause_state_is_read_once_per_period_and_fails_open(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The cache reads the table once per period however many ask; when the read fails it
    keeps what it last read (a pause stays a pause, no pause stays none) and says so in one
    warning, instead of shutting every webhook."""
    caplog.set_level(logging.WARNING, logger="app.ops.pause")
    pool = await db.create_pool(db_url, 2)
    cache, unhurried = PauseCache(seconds=0), PauseCache(seconds=60)
    try:
        async with pool.acquire() as conn:
            await pause_provider(conn, "stripe", "cli:test", execute=True)
        assert await cache.paused(pool) == await unhurried.paused(pool) == {"stripe"}
        async with pool.acquire() as conn:
            await resume_provider(conn, "stripe", "cli:test", execute=True)
        assert await unhurried.paused(pool) == {"stripe"}  # within its period: not read again
    finally:
        await pool.close()
    caplog.clear()

    assert await cache.paused(pool) == {"stripe"}  # the pool is closed: the last state read
    assert await PauseCache().paused(pool) == frozenset()  # never read: nothing paused
    assert [r.getMessage() for r in caplog.records] == ["pause_state_unreadable"] * 2
