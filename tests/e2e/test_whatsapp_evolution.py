"""An inn on an Evolution API gateway: the same conversation, receipts and at-most-once
replies as on Meta, authenticated by the instance's own secret."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import Any

import httpx
import orjson
import pytest

from app.dev.fake_evolution import FakeEvolution, upsert_event
from app.dev.fake_stripe import event
from app.inventory.setup import import_property
from app.pii import pii_keys
from tests.e2e.conftest import API_KEY, INSTANCE, SECRET, Stack, evolution_spec
from tests.e2e.test_whatsapp_flow import _settled
from tests.inventory.conftest import START
from tests.support import eventually

GUEST = "5511955554444"


async def post(stack: Stack, payload: dict[str, Any], secret: str | None = SECRET) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Webhook-Secret"] = secret
    async with httpx.AsyncClient(base_url=stack.public) as http:
        answer = await http.post(
            "/webhooks/whatsapp/evolution", content=orjson.dumps(payload), headers=headers
        )
    return answer.status_code


async def replies(gateway: FakeEvolution, count: int) -> list[str]:
    async def sent() -> list[str]:
        texts = [m["text"] for m in gateway.sent if m["to"] == GUEST]
        return texts if len(texts) >= count else []

    return await eventually(sent)


async def _written(stack: Stack) -> int:
    return await stack.pool.fetchval(
        "SELECT (SELECT count(*) FROM processed_events) + (SELECT count(*) FROM messages)"
        " + (SELECT count(*) FROM contacts)"
    )


async def test_a_guest_books_through_the_gateway(stack: Stack, gateway: FakeEvolution) -> None:
    said = (
        f"Oi, tem quarto de {START:%d/%m/%Y} a {START + dt.timedelta(days=2):%d/%m/%Y}, 2 pessoas?"
    )
    assert await post(stack, upsert_event(INSTANCE, GUEST, said)) == 200
    assert "1. Std" in (await replies(gateway, 1))[0]
    assert await post(stack, upsert_event(INSTANCE, GUEST, "quero o 1")) == 200
    link = (await replies(gateway, 2))[1]
    session = re.search(r"cs_\w+", link)
    assert session is not None
    paid = stack.stripe.complete(session.group(0))
    assert (await stack.post_event(event("checkout.session.completed", paid))).status_code == 200
    code = await eventually(lambda: stack.pool.fetchval("SELECT code FROM reservations"))
    assert code in (await replies(gateway, 3))[2]
    assert stack.graph.sent == []  # nothing went through Meta


@pytest.mark.parametrize("secret", [None, "", "wrong-secret"])
async def test_a_wrong_or_missing_secret_is_401_and_writes_nothing(
    stack: Stack, gateway: FakeEvolution, secret: str | None
) -> None:
    assert await post(stack, upsert_event(INSTANCE, GUEST, "oi"), secret) == 401
    assert await post(stack, upsert_event("other-instance", GUEST, "oi")) == 401
    assert await _written(stack) == 0 and not stack.emulator.tasks


async def test_own_messages_and_other_events_are_acknowledged_and_ignored(
    stack: Stack, gateway: FakeEvolution
) -> None:
    ours = upsert_event(INSTANCE, GUEST, "resposta da pousada", from_me=True)
    status = {"event": "messages.update", "instance": INSTANCE, "data": {"status": "READ"}}
    connection = {"event": "CONNECTION_UPDATE", "instance": INSTANCE, "data": {"state": "open"}}
    group = upsert_event(INSTANCE, GUEST, "oi")
    group["data"]["key"]["remoteJid"] = "120363000000000000@g.us"
    for payload in (ours, status, connection, group):
        assert await post(stack, payload) == 200
    assert await _written(stack) == 0 and not stack.emulator.tasks


async def test_fifty_deliveries_of_one_message_get_one_reply(
    stack: Stack, gateway: FakeEvolution
) -> None:
    payload = upsert_event(INSTANCE, GUEST, "oi", message_id="3EB0SAMEMESSAGE")
    answers = await asyncio.gather(*(post(stack, payload) for _ in range(50)))
    assert set(answers) == {200}
    await replies(gateway, 1)
    await _settled(stack)
    assert len(await replies(gateway, 1)) == 1
    receipts = await stack.pool.fetchval(
        "SELECT count(*) FROM processed_events WHERE external_id = '3EB0SAMEMESSAGE'"
    )
    assert receipts == 1


async def test_gateway_errors_are_retried_until_sent_once(
    stack: Stack, gateway: FakeEvolution
) -> None:
    gateway.fail_with(503, 429)
    assert await post(stack, upsert_event(INSTANCE, GUEST, "oi")) == 200
    await replies(gateway, 1)
    await _settled(stack)
    assert len(gateway.sent) == 1
    row = await stack.pool.fetchrow("SELECT status, attempts FROM messages WHERE direction = 'out'")
    assert (row["status"], row["attempts"]) == ("sent", 3)


async def test_credentials_are_stored_sealed_and_reimport_writes_nothing(
    stack: Stack, gateway: FakeEvolution
) -> None:
    settings = await stack.pool.fetchval("SELECT settings::text FROM properties")
    assert SECRET not in settings and API_KEY not in settings
    version = await stack.pool.fetchval("SELECT xmin::text FROM properties")
    async with stack.pool.acquire() as conn:  # the same file again: the seals are kept
        await import_property(conn, evolution_spec(gateway.base_url), pii=pii_keys(stack.settings))
    assert await stack.pool.fetchval("SELECT xmin::text FROM properties") == version
