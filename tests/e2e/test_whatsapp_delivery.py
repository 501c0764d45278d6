"""Sending replies through the Graph API end to end: the worker's /tasks/whatsapp/send
(real OIDC tokens) leases the reply's row so one message goes out however many copies
of its task run; Graph 429/5xx are retried by Cloud Tasks (503) until sent once; any
other 4xx (a refused message, a bad access token) fails the reply for good."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from app.dev.fake_graph import inbound_envelope
from app.pii import pii_keys
from app.settings import Secret
from tests.e2e.conftest import GRAPH_TOKEN, SERVICE_ACCOUNT, Stack, calendar, running_stack
from tests.support import eventually

NUMBER_ID = "pn-test-inn"
GUEST = "5511987650011"
SEND_TASK = "/tasks/whatsapp/send"


async def _say(stack: Stack, text: str = "oi") -> None:
    """The guest writes to the inn, as Meta delivers it."""
    response = await stack.post_whatsapp(inbound_envelope(NUMBER_ID, GUEST, text))
    assert response.status_code == 200, response.text


async def _reply_id(stack: Stack) -> uuid.UUID:
    """The id of the (single) reply row the conversation wrote."""

    async def written() -> uuid.UUID | None:
        return await stack.pool.fetchval("SELECT id FROM messages WHERE direction = 'out'")

    return await eventually(written)


def _send_deliveries(stack: Stack, message_id: uuid.UUID) -> list[int | None]:
    """What the worker answered each delivery of this reply's send task, in order."""
    return [d.status for d in stack.emulator.deliveries if d.task == f"send-{message_id}"]


async def _answered(stack: Stack, message_id: uuid.UUID) -> None:
    """Wait until the send task got its 2xx: Cloud Tasks delivers it no more after that."""

    async def done() -> bool:
        return any(s is not None and 200 <= s < 300 for s in _send_deliveries(stack, message_id))

    await eventually(done)


async def _row(stack: Stack, message_id: uuid.UUID) -> asyncpg.Record:
    row = await stack.pool.fetchrow("SELECT * FROM messages WHERE id = $1", message_id)
    assert row is not None
    return row


def _token(stack: Stack) -> str:
    """A real OIDC token for the tasks' service account, as Cloud Tasks attaches."""
    return stack.emulator.mint_token(SERVICE_ACCOUNT, stack.settings.oidc_audience or "")


async def _run_send_task(
    http: httpx.AsyncClient, message_id: uuid.UUID, token: str
) -> httpx.Response:
    return await http.post(
        SEND_TASK,
        json={"message_id": str(message_id)},
        headers={"Authorization": f"Bearer {token}"},
    )


async def _queued_reply(stack: Stack, text: str) -> uuid.UUID:
    """One more reply to the guest's conversation, queued but with no send task of its own
    (as a turn writes it, before the outbox relay): only the test's copies will send it."""
    pii = pii_keys(stack.settings)
    message_id = await stack.pool.fetchval(
        "INSERT INTO messages (conversation_id, direction, body_encrypted, dedupe_key, status)"
        " SELECT id, 'out', $1, 'test:concurrent-send', 'queued' FROM conversations"
        " RETURNING id",
        pii.encrypt(text, "message"),
    )
    assert isinstance(message_id, uuid.UUID)
    return message_id


async def test_concurrent_send_tasks_for_one_reply_send_it_once(stack: Stack) -> None:
    """20 concurrent runs of the send task for one queued reply: Graph receives it once;
    each run answers 200 (sent, by itself or another) or 503 busy (another run holds the
    lease), nothing else; the row records one attempt and Graph's id."""
    await calendar(stack)
    await _say(stack)
    first = await _reply_id(stack)
    await _answered(stack, first)
    assert len(stack.graph.sent) == 1
    text = "Uma segunda resposta, enviada uma única vez."
    message_id = await _queued_reply(stack, text)

    token = _token(stack)
    async with httpx.AsyncClient(base_url=stack.worker) as http:
        answers = await asyncio.gather(
            *(_run_send_task(http, message_id, token) for _ in range(20))
        )
    assert {a.status_code for a in answers} <= {200, 503}, [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 503:
            assert answer.json() == {"error": "busy"}
        else:
            assert answer.json() == {"outcome": "sent"}
    assert any(a.status_code == 200 for a in answers)

    [second] = stack.graph.sent[1:]
    assert (second["to"], second["phone_number_id"], second["text"]) == (GUEST, NUMBER_ID, text)
    row = await _row(stack, message_id)
    assert (row["status"], row["attempts"], row["provider_message_id"]) == (
        "sent",
        1,
        second["id"],
    )
    assert row["sent_at"] is not None and row["lease_until"] is None

    async with httpx.AsyncClient(base_url=stack.worker) as http:
        late = await _run_send_task(http, message_id, token)
    assert late.status_code == 200 and late.json() == {"outcome": "sent"}
    assert len(stack.graph.sent) == 2


async def test_send_task_needs_a_valid_oidc_token(stack: Stack) -> None:
    """Without a token, or with one for another audience, the send task is refused (401 or
    403) and nothing is sent or leased."""
    await calendar(stack)
    await _say(stack)
    first = await _reply_id(stack)
    await _answered(stack, first)
    message_id = await _queued_reply(stack, "Não deve sair.")
    wrong_audience = stack.emulator.mint_token(SERVICE_ACCOUNT, "https://elsewhere.example")
    async with httpx.AsyncClient(base_url=stack.worker) as http:
        missing = await http.post(SEND_TASK, json={"message_id": str(message_id)})
        other = await _run_send_task(http, message_id, wrong_audience)
    assert missing.status_code in {401, 403} and other.status_code in {401, 403}
    row = await _row(stack, message_id)
    assert (row["status"], row["attempts"], row["lease_until"]) == ("queued", 0, None)
    assert len(stack.graph.sent) == 1


async def test_throttled_then_failing_graph_is_retried_until_sent_once(stack: Stack) -> None:
    """Graph answers 429, then 500, then accepts: the send task answers 503 twice (Cloud
    Tasks retries with backoff) and 200 once; one message reaches the guest; the row is
    sent after 3 attempts, with the error of the failed ones cleared."""
    await calendar(stack)
    stack.graph.fail_with(429, 500)
    await _say(stack)
    message_id = await _reply_id(stack)
    await _answered(stack, message_id)
    assert _send_deliveries(stack, message_id) == [503, 503, 200]
    assert len(stack.graph.sent) == 1 and stack.graph.sent[0]["to"] == GUEST
    assert stack.graph.failures == []
    row = await _row(stack, message_id)
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 3, None)
    assert row["provider_message_id"] == stack.graph.sent[0]["id"]
    assert row["sent_at"] is not None and row["lease_until"] is None


async def _refused_for_good(stack: Stack, status: int) -> None:
    """The reply Graph refused with ``status``: failed, never sent, its task answered 200
    once and not retried; the error names the status and nothing of the guest's."""
    message_id = await _reply_id(stack)
    await _answered(stack, message_id)
    assert _send_deliveries(stack, message_id) == [200]
    row = await _row(stack, message_id)
    assert row["status"] == "failed"
    assert row["last_error"] is not None and str(status) in row["last_error"]
    assert GUEST not in row["last_error"] and GRAPH_TOKEN not in row["last_error"]
    assert (row["attempts"], row["sent_at"], row["provider_message_id"]) == (1, None, None)
    assert row["lease_until"] is None
    assert stack.graph.sent == []
    # The guest's message itself was answered: its task is done, not retried either.
    receipt = await stack.pool.fetchrow(
        "SELECT outcome, processed_at FROM processed_events WHERE source = 'whatsapp'"
    )
    assert receipt["outcome"] == "answered" and receipt["processed_at"] is not None


@pytest.mark.parametrize("status", [400, 401])
async def test_graph_refusal_fails_the_reply_for_good(stack: Stack, status: int) -> None:
    """Graph 400 (invalid parameter) or 401 (rejected token) is permanent: recorded as
    failed, not retried, nothing sent."""
    await calendar(stack)
    stack.graph.fail_with(status)
    await _say(stack)
    await _refused_for_good(stack, status)
    assert stack.graph.failures == []


@pytest.fixture
async def bad_token_stack(db_url: str) -> AsyncIterator[Stack]:
    """The whole stack with a WhatsApp access token Graph does not accept."""
    async with running_stack(db_url, whatsapp_access_token=Secret("expired-token")) as running:
        yield running


async def test_bad_access_token_is_permanent_like_a_400(bad_token_stack: Stack) -> None:
    """With an access token Graph rejects (401, OAuth code 190) the reply fails for good,
    like a 400: no retry, nothing sent, the error names the status but not the token."""
    stack = bad_token_stack
    await calendar(stack)
    await _say(stack)
    await _refused_for_good(stack, 401)
    row: Any = await stack.pool.fetchrow("SELECT last_error FROM messages WHERE direction = 'out'")
    assert "expired-token" not in row["last_error"]
