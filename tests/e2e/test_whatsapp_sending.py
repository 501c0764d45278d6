"""Sending a reply through the Graph API: at most once, retried on 429/5xx, never on 4xx."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import pytest

from app.dev.fake_graph import inbound_envelope
from tests.e2e.conftest import SERVICE_ACCOUNT, Stack
from tests.e2e.test_whatsapp_flow import GUEST, _setup, replies
from tests.support import eventually


async def _reply_id(stack: Stack) -> uuid.UUID:
    async def queued() -> uuid.UUID | None:
        return await stack.pool.fetchval("SELECT id FROM messages WHERE direction = 'out'")

    return await eventually(queued)


def _send_deliveries(stack: Stack, message_id: uuid.UUID) -> list[int | None]:
    return [d.status for d in stack.emulator.deliveries if d.task == f"send-{message_id}"]


async def test_concurrent_send_tasks_send_once(stack: Stack) -> None:
    await _setup(stack)
    stack.graph.fail_with(503)  # keep the real task away while the copies race
    await stack.post_whatsapp(inbound_envelope("pn-test-inn", GUEST, "oi"))
    message_id = await _reply_id(stack)
    token = stack.emulator.mint_token(SERVICE_ACCOUNT, stack.settings.oidc_audience or "")
    async with httpx.AsyncClient(base_url=stack.worker) as http:
        answers = await asyncio.gather(
            *(
                http.post(
                    "/tasks/whatsapp/send",
                    json={"message_id": str(message_id)},
                    headers={"Authorization": f"Bearer {token}"},
                )
                for _ in range(20)
            )
        )
    assert {a.status_code for a in answers} <= {200, 503}
    await replies(stack, 1)
    await eventually(lambda: _done(stack, message_id))
    assert len(stack.graph.sent) == 1
    row = await stack.pool.fetchrow(
        "SELECT status, sent_at FROM messages WHERE id = $1", message_id
    )
    assert row["status"] == "sent" and row["sent_at"] is not None


async def _done(stack: Stack, message_id: uuid.UUID) -> bool:
    return 200 in _send_deliveries(stack, message_id)


async def _row(stack: Stack, message_id: uuid.UUID) -> asyncpg.Record:
    row = await stack.pool.fetchrow("SELECT * FROM messages WHERE id = $1", message_id)
    assert row is not None
    return row


async def test_throttled_and_failing_graph_is_retried_until_sent_once(stack: Stack) -> None:
    await _setup(stack)
    stack.graph.fail_with(429, 500)
    await stack.post_whatsapp(inbound_envelope("pn-test-inn", GUEST, "oi"))
    message_id = await _reply_id(stack)
    await replies(stack, 1)
    await eventually(lambda: _done(stack, message_id))
    assert _send_deliveries(stack, message_id) == [503, 503, 200]
    assert len(stack.graph.sent) == 1
    row = await stack.pool.fetchrow(
        "SELECT status, attempts FROM messages WHERE id = $1", message_id
    )
    assert (row["status"], row["attempts"]) == ("sent", 3)


@pytest.mark.parametrize("refusal", [400, 401])
async def test_refused_message_fails_for_good(stack: Stack, refusal: int) -> None:
    await _setup(stack)
    stack.graph.fail_with(refusal)
    await stack.post_whatsapp(inbound_envelope("pn-test-inn", GUEST, "oi"))
    message_id = await _reply_id(stack)
    await eventually(lambda: _done(stack, message_id))
    row = await _row(stack, message_id)
    assert row["status"] == "failed" and str(refusal) in row["last_error"]
    assert row["sent_at"] is None and stack.graph.sent == []
    assert _send_deliveries(stack, message_id) == [200]  # answered once, not retried
