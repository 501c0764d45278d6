"""Nobody hears twice: a send attempt whose outcome is unknown (the worker died, or its
answer was lost, after Graph took the message) is not blindly repeated. Graph's status
webhook, matched by the biz_opaque_callback_data we send, proves it went out; the next
attempt waits for that proof and sends again only without it."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest

from app.dev.fake_graph import status_envelope
from tests.e2e.conftest import Stack, running_stack
from tests.e2e.test_make_run import TEXTS, _cli, dev_up, ports_env
from tests.e2e.test_stack_restart import _lines, _pids
from tests.e2e.test_whatsapp_delivery import (
    GUEST,
    NUMBER_ID,
    _answered,
    _queued_reply,
    _reply_id,
    _row,
    _run_send_task,
    _say,
    _token,
)
from tests.e2e.test_whatsapp_flow import calendar
from tests.support import eventually


@pytest.fixture
async def proving_stack(db_url: str) -> AsyncIterator[Stack]:
    """A stack whose fake Graph reports statuses, with a 2 s wait for proof."""
    async with running_stack(db_url, whatsapp_send_proof_seconds=2) as stack:
        stack.report_statuses()
        yield stack


async def _reply_ready(stack: Stack) -> uuid.UUID:
    """A queued reply to a guest who wrote a moment ago (the first reply went out)."""
    await calendar(stack)
    await _say(stack)
    await _answered(stack, await _reply_id(stack))
    return await _queued_reply(stack, "Sua reserva está confirmada. Código: ABC234.")


async def _attempt_cut_off(stack: Stack, message_id: uuid.UUID, seconds_ago: float) -> None:
    """As a worker that died mid-send leaves the row: attempted, its lease lapsed."""
    await stack.pool.execute(
        "UPDATE messages SET attempts = 1, lease_until = now() - interval '1 second',"
        " attempt_started_at = now() - make_interval(secs => $2) WHERE id = $1",
        message_id,
        seconds_ago,
    )


def _sends_of(stack: Stack, message_id: uuid.UUID) -> int:
    return sum(1 for sent in stack.graph.sent if sent["callback"] == str(message_id))


async def test_a_status_proves_a_send_whose_answer_was_lost(proving_stack: Stack) -> None:
    """Graph's 'sent' status for a reply whose attempt was cut off, matched by our id in
    biz_opaque_callback_data, records it as sent with Graph's id; the retried task then
    answers without sending it again."""
    stack = proving_stack
    message_id = await _reply_ready(stack)
    await _attempt_cut_off(stack, message_id, 1)
    wamid = "wamid.HBgNNTUxMTk4NzY1MDAxMRUCABEYEjlCQzVBODI1NTE2NUU2QjU2AA=="
    body = status_envelope(NUMBER_ID, wamid, GUEST, "sent", str(message_id))
    assert (await stack.post_whatsapp(body)).status_code == 200
    row = await _row(stack, message_id)
    assert (row["status"], row["provider_message_id"]) == ("sent", wamid)
    assert row["sent_at"] is not None and row["attempt_started_at"] is None

    async with httpx.AsyncClient(base_url=stack.worker) as http:
        answer = await _run_send_task(http, message_id, _token(stack))
    assert answer.json() == {"outcome": "sent"} and _sends_of(stack, message_id) == 0


async def test_without_proof_the_next_attempt_waits_then_sends_once(db_url: str) -> None:
    """A cut-off attempt with no status yet: the send task answers 503 (Cloud Tasks retries)
    and sends nothing while the proof may still come; after the wait it sends once, and
    says so in one warning line."""
    async with running_stack(db_url, whatsapp_send_proof_seconds=60) as stack:
        message_id = await _reply_ready(stack)
        await _attempt_cut_off(stack, message_id, 5)
        async with httpx.AsyncClient(base_url=stack.worker) as http:
            waiting = await _run_send_task(http, message_id, _token(stack))
            assert waiting.status_code == 503 and waiting.json() == {"error": "busy"}
            assert _sends_of(stack, message_id) == 0
            row = await _row(stack, message_id)
            assert row["lease_until"] is None and row["attempt_started_at"] is not None

            await _attempt_cut_off(stack, message_id, 61)
            sent = await _run_send_task(http, message_id, _token(stack))
            assert sent.json() == {"outcome": "sent"} and _sends_of(stack, message_id) == 1
            again = await _run_send_task(http, message_id, _token(stack))
            assert again.json() == {"outcome": "sent"} and _sends_of(stack, message_id) == 1
        row = await _row(stack, message_id)
        assert row["status"] == "sent" and row["attempt_started_at"] is None


async def test_a_status_before_the_answer_is_not_lost(proving_stack: Stack) -> None:
    """Graph's statuses may come before its answer to the send: they are recorded (the reply
    is 'delivered', with Graph's id) and the late answer does not undo them."""
    stack = proving_stack
    message_id = await _reply_ready(stack)
    stack.graph.hold()
    async with httpx.AsyncClient(base_url=stack.worker) as http:
        sending = asyncio.create_task(_run_send_task(http, message_id, _token(stack)))

        async def delivered() -> bool:
            return (await _row(stack, message_id))["status"] == "delivered"

        await eventually(delivered)
        stack.graph.release()
        assert (await sending).json() == {"outcome": "sent"}
    row = await _row(stack, message_id)
    assert row["status"] == "delivered" and _sends_of(stack, message_id) == 1
    assert row["provider_message_id"] == stack.graph.sent[-1]["id"]


# ---- the worker killed while Graph holds its answer ------------------------------------


def test_a_worker_killed_mid_send_sends_the_reply_once(db_url: str, tmp_path: Path) -> None:
    """make run's stack; the fake Graph takes the guest's reply and holds its answer; the
    worker is SIGKILLed then (its outcome never written) and make run starts it again. The
    status Graph posted proves the send, so the retried task sends nothing: the guest gets
    the reply once."""
    env = ports_env(DATABASE_URL=db_url)
    log = tmp_path / "stack.log"
    graph = env["WHATSAPP_API_BASE"].rsplit("/", 1)[0]
    phone = "+5511966665555"
    checkin = dt.datetime.now(ZoneInfo("America/Sao_Paulo")).date() + dt.timedelta(days=20)
    text = TEXTS[0].format(
        checkin=f"{checkin:%d/%m/%Y}", checkout=f"{checkin + dt.timedelta(days=2):%d/%m/%Y}"
    )
    with dev_up(env, log):
        httpx.post(f"{graph}/_dev/delay", json={"seconds": 30}).raise_for_status()
        assert _cli(env, "dev", "whatsapp", "--from", phone, text)[0] == 0

        async def taken() -> list[dict[str, object]]:
            async with httpx.AsyncClient() as http:
                sent = (await http.get(f"{graph}/_dev/messages")).json()["messages"]
            return [m for m in sent if m["to"] == phone.lstrip("+")]

        [reply] = asyncio.run(eventually(taken, within=30))
        os.kill(_pids(log, "worker")[-1], signal.SIGKILL)
        httpx.post(f"{graph}/_dev/delay", json={"seconds": 0}).raise_for_status()

        def done() -> bool:
            return any(
                line.get("path") == "/tasks/whatsapp/send"
                and line.get("status") == 200
                and line.get("task_name") == f"send-{reply['callback']}"
                for line in _lines(log, "http_request")
            )

        async def retried() -> bool:
            return await asyncio.to_thread(done)

        asyncio.run(eventually(retried, within=60, interval=0.3))
        sent_to_guest = asyncio.run(taken())
    assert [m["callback"] for m in sent_to_guest] == [reply["callback"]]
    assert orjson.loads(_cli(env, "ops", "reconcile")[1][-1])["found"] == 0
