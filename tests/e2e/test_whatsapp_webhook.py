"""The public Meta WhatsApp webhook end to end, over real HTTP with the local Cloud Tasks,
the worker and the fake Graph API: the subscription handshake; input that is not an
authentic, well-formed delivery (a 4xx, never a 5xx, and nothing written); authentic but
irrelevant deliveries (acknowledged, nothing processed); multi-message envelopes;
duplicate deliveries, forced task redeliveries and a Cloud Tasks outage (one reply each);
status updates of our replies; and what the message tasks carry (ids only)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import logging
import uuid
from typing import Any

import httpx
import orjson
import pytest
from pythonjsonlogger.json import JsonFormatter

from app.dev.fake_graph import inbound_envelope, signature
from tests.e2e.conftest import APP_SECRET, VERIFY_TOKEN, Stack, calendar
from tests.support import eventually

NUMBER_ID = "pn-test-inn"
GUEST = "5511987650001"
OTHER_GUEST = "5511987650002"
PATH = "/webhooks/whatsapp/meta"
MESSAGE_TASK = "/tasks/whatsapp/message"


# ---- helpers ------------------------------------------------------------------------------


def _wamid() -> str:
    return f"wamid.HBgN{uuid.uuid4().hex.upper()}=="


def _envelope(
    text: str = "oi",
    *,
    sender: str = GUEST,
    message_id: str | None = None,
    number_id: str = NUMBER_ID,
) -> dict[str, Any]:
    """One text message as Meta posts it."""
    return inbound_envelope(number_id, sender, text, message_id=message_id or _wamid())


def _value(envelope: dict[str, Any], entry: int = 0) -> dict[str, Any]:
    value: dict[str, Any] = envelope["entry"][entry]["changes"][0]["value"]
    return value


def _statuses(*statuses: dict[str, Any]) -> dict[str, Any]:
    """A statuses-only delivery for our number (what Graph posts about our replies)."""
    envelope = _envelope()
    value = _value(envelope)
    del value["messages"], value["contacts"]
    value["statuses"] = [
        {"timestamp": "1700000000", "recipient_id": GUEST, **status} for status in statuses
    ]
    return envelope


async def _post(stack: Stack, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """POST exactly these headers (no signature added)."""
    async with httpx.AsyncClient(base_url=stack.public) as http:
        return await http.post(PATH, content=body, headers=headers)


async def _counts(stack: Stack) -> dict[str, int]:
    row = await stack.pool.fetchrow(
        "SELECT (SELECT count(*) FROM processed_events) AS processed_events,"
        " (SELECT count(*) FROM contacts) AS contacts,"
        " (SELECT count(*) FROM conversations) AS conversations,"
        " (SELECT count(*) FROM messages) AS messages"
    )
    assert row is not None
    return dict(row)


async def _nothing_written(stack: Stack) -> None:
    assert await _counts(stack) == {
        "processed_events": 0,
        "contacts": 0,
        "conversations": 0,
        "messages": 0,
    }
    assert stack.emulator.tasks == {}


def _refused(response: httpx.Response, status: int) -> None:
    """The expected 4xx, with only an error code in the body (no detail, no trace)."""
    assert response.status_code < 500, response.text
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text
    assert list(response.json()) == ["error"]


async def _replies(stack: Stack, count: int, to: str = GUEST) -> list[dict[str, Any]]:
    """Wait until at least ``count`` replies reached ``to`` through the fake Graph."""

    async def sent() -> list[dict[str, Any]]:
        found = [m for m in stack.graph.sent if m["to"] == to]
        return found if len(found) >= count else []

    return await eventually(sent)


async def _settled(stack: Stack, extra: int = 0) -> None:
    """Every task created so far has been answered 2xx (``1 + extra`` times, when Cloud
    Tasks redelivers), so none is pending and none will create more work."""

    async def idle() -> bool:
        if not stack.emulator.tasks:
            return False
        done: dict[str, int] = {}
        for delivery in stack.emulator.deliveries:
            if delivery.status is not None and 200 <= delivery.status < 300:
                done[delivery.task] = done.get(delivery.task, 0) + 1
        names = [name.rsplit("/", 1)[-1] for name in stack.emulator.tasks]
        return all(done.get(name, 0) >= 1 + extra for name in names)

    await eventually(idle)


def _message_tasks(stack: Stack) -> list[Any]:
    return [
        task
        for task in stack.emulator.tasks.values()
        if task.http_request.url.endswith(MESSAGE_TASK)
    ]


# ---- handshake ----------------------------------------------------------------------------


async def _handshake(stack: Stack, params: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.public) as http:
        return await http.get(PATH, params=params)


async def test_handshake_echoes_the_challenge_only_for_our_token(stack: Stack) -> None:
    """Meta's subscription check with our verify token gets hub.challenge back, verbatim,
    as text/plain; a wrong, empty or missing token, or a mode other than subscribe, gets
    403 and the challenge is not echoed."""
    ok = await _handshake(
        stack,
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "12345"},
    )
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("text/plain")
    assert ok.text == "12345"
    refused = {
        "wrong-token": {"hub.mode": "subscribe", "hub.verify_token": "not-our-token"},
        "token-other-case": {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN.upper()},
        "token-prefix": {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN[:-1]},
        "empty-token": {"hub.mode": "subscribe", "hub.verify_token": ""},
        "no-token": {"hub.mode": "subscribe"},
        "wrong-mode": {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN},
        "no-mode": {"hub.verify_token": VERIFY_TOKEN},
    }
    for case, params in refused.items():
        response = await _handshake(stack, {**params, "hub.challenge": "12345"})
        assert response.status_code == 403, case
        _refused(response, 403)
        assert "12345" not in response.text, case


# ---- authentication -----------------------------------------------------------------------


def _hex_hmac(body: bytes, secret: str, digest: Any) -> str:
    return hmac.new(secret.encode(), body, digest).hexdigest()


_MESSAGE = orjson.dumps(_envelope(message_id="wamid.SIGNED=="))

BAD_SIGNATURES: dict[str, str | None] = {
    "missing": None,
    "empty": "",
    "garbled": "sha256=zz",
    "bare-hex": _hex_hmac(_MESSAGE, APP_SECRET, hashlib.sha256),
    "sha1-prefix": "sha1=" + _hex_hmac(_MESSAGE, APP_SECRET, hashlib.sha1),
    "another-secret": signature(_MESSAGE, "not-the-app-secret"),
    "other-body": signature(_MESSAGE.replace(b'"oi"', b'"ok"'), APP_SECRET),
    "truncated": signature(_MESSAGE, APP_SECRET)[:-2],
}


async def test_bad_signature_is_401_and_nothing_written(stack: Stack) -> None:
    """A delivery whose X-Hub-Signature-256 is missing, malformed, of another scheme, made
    with another secret or over another body is refused with 401 before anything is
    read or written: no receipt, contact, conversation, message or task."""
    await calendar(stack)
    for case, header in BAD_SIGNATURES.items():
        headers = {"Content-Type": "application/json"}
        if header is not None:
            headers["X-Hub-Signature-256"] = header
        response = await _post(stack, _MESSAGE, headers)
        assert response.status_code == 401, (case, response.text)
        _refused(response, 401)
        assert response.json() == {"error": "unauthorized"}, case
        await _nothing_written(stack)


async def test_equivalent_spellings_are_accepted(stack: Stack) -> None:
    """What the refusals are not about: the hex digest in upper case, and a charset
    parameter on the JSON media type, are an authentic JSON delivery (200)."""
    await calendar(stack)
    digest = signature(_MESSAGE, APP_SECRET).removeprefix("sha256=")
    upper = await stack.post_whatsapp(
        _MESSAGE, **{"X-Hub-Signature-256": f"sha256={digest.upper()}"}
    )
    assert upper.status_code == 200, upper.text
    charset = await stack.post_whatsapp(
        _envelope(), **{"Content-Type": "application/json; charset=utf-8"}
    )
    assert charset.status_code == 200, charset.text


async def test_non_ascii_signature_is_401_not_500(stack: Stack) -> None:
    """Anyone can send a signature header with bytes outside ASCII: it must be refused as
    any other bad signature (401), never crash the handler (500)."""
    await calendar(stack)
    async with httpx.AsyncClient(base_url=stack.public) as http:
        response = await http.post(
            PATH,
            content=_MESSAGE,
            headers=[
                (b"Content-Type", b"application/json"),
                (b"X-Hub-Signature-256", b"sha256=\xe9t\xe9"),
            ],
        )
    await _nothing_written(stack)
    _refused(response, 401)


# ---- malformed but signed -----------------------------------------------------------------


def _change(value: dict[str, Any], field: str = "messages") -> bytes:
    change = {"field": field, "value": value}
    return orjson.dumps({"object": "whatsapp_business_account", "entry": [{"changes": [change]}]})


_METADATA = {"phone_number_id": NUMBER_ID}
_TEXT = {"from": GUEST, "id": "wamid.X==", "type": "text", "text": {"body": "oi"}}


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in _TEXT.items() if k != key}


MALFORMED: dict[str, bytes] = {
    "not-json": b"this is not json",
    "truncated-json": _MESSAGE[:-3],
    "json-array": orjson.dumps([orjson.loads(_MESSAGE)]),
    "json-string": b'"whatsapp_business_account"',
    "entry-not-a-list": orjson.dumps({"object": "whatsapp_business_account", "entry": {}}),
    "entry-of-strings": orjson.dumps({"entry": ["x"]}),
    "changes-not-a-list": orjson.dumps({"entry": [{"changes": {"field": "messages"}}]}),
    "change-without-value": orjson.dumps({"entry": [{"changes": [{"field": "messages"}]}]}),
    "messages-not-a-list": _change({"metadata": _METADATA, "messages": _TEXT}),
    "message-without-id": _change({"metadata": _METADATA, "messages": [_without("id")]}),
    "message-with-empty-id": _change({"metadata": _METADATA, "messages": [{**_TEXT, "id": ""}]}),
    "message-with-numeric-id": _change({"metadata": _METADATA, "messages": [{**_TEXT, "id": 7}]}),
    "message-with-overlong-id": _change(
        {"metadata": _METADATA, "messages": [{**_TEXT, "id": "wamid." + "x" * 300}]}
    ),
    "message-without-from": _change({"metadata": _METADATA, "messages": [_without("from")]}),
    "change-without-metadata": _change({"messages": [_TEXT]}),
    "metadata-without-phone-number-id": _change(
        {"metadata": {"display_phone_number": "5548000000000"}, "messages": [_TEXT]}
    ),
    "statuses-without-metadata": _change({"statuses": [{"id": "wamid.Y", "status": "read"}]}),
    "status-without-id": _change({"metadata": _METADATA, "statuses": [{"status": "read"}]}),
    # The first message is fine: the envelope is refused whole, nothing of it recorded.
    "good-then-bad-message": _change(
        {"metadata": _METADATA, "messages": [_TEXT, _without("from")]}
    ),
}


async def test_malformed_but_signed_is_400_and_nothing_written(stack: Stack) -> None:
    """A correctly signed body that is not a readable envelope (not JSON, not an object,
    ``entry`` not a list, a message without id or sender, a change without its
    phone_number_id, …) is refused whole with 400, never a 5xx: nothing of it is
    recorded and no task is created."""
    await calendar(stack)
    for case, body in MALFORMED.items():
        response = await stack.post_whatsapp(body)
        assert response.status_code == 400, (case, response.text)
        _refused(response, 400)
        await _nothing_written(stack)


async def test_signed_body_of_another_media_type_is_415(stack: Stack) -> None:
    """An authentic body declared as anything but application/json (or not declared) is
    refused with 415 and nothing is written."""
    await calendar(stack)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"X-Hub-Signature-256": signature(_MESSAGE, APP_SECRET)}
        if content_type is not None:
            headers["Content-Type"] = content_type
        response = await _post(stack, _MESSAGE, headers)
        assert response.status_code == 415, (content_type, response.text)
        _refused(response, 415)
        await _nothing_written(stack)


async def test_one_mebibyte_body_is_413(stack: Stack) -> None:
    """A 1 MiB delivery, signed or not, is refused with 413 and nothing is written."""
    await calendar(stack)
    envelope = _envelope()
    envelope["padding"] = "x" * (1024 * 1024)
    body = orjson.dumps(envelope)
    for headers in (
        {"Content-Type": "application/json", "X-Hub-Signature-256": signature(body, APP_SECRET)},
        {"Content-Type": "application/json"},
    ):
        response = await _post(stack, body, headers)
        _refused(response, 413)
        assert response.json() == {"error": "payload_too_large"}
        await _nothing_written(stack)


NUL_IDS: dict[str, dict[str, Any]] = {
    "message-id": _envelope(message_id="wamid.A\u0000B"),
    "phone-number-id": _envelope(number_id="pn-test\u0000inn"),
    "status-id": _statuses({"id": "wamid.A\u0000B", "status": "read"}),
    "error-code": _statuses(
        {"id": "wamid.AB", "status": "failed", "errors": [{"code": "1\u00001"}]}
    ),
}


async def test_signed_ids_with_a_nul_character_are_refused_not_500(stack: Stack) -> None:
    """A signed delivery carrying an id Postgres cannot store is unreadable for us: it must
    be a 4xx like any other malformed envelope, and nothing is written."""
    await calendar(stack)
    statuses = {}
    for case, envelope in NUL_IDS.items():
        statuses[case] = (await stack.post_whatsapp(envelope)).status_code
        await _nothing_written(stack)
    assert all(status < 500 for status in statuses.values()), statuses


# ---- authentic but irrelevant -------------------------------------------------------------


def _account_update() -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "100000000000009",
                "time": 1700000000,
                "changes": [
                    {
                        "field": "account_update",
                        "value": {"phone_number": "5548000000000", "event": "VERIFIED_ACCOUNT"},
                    }
                ],
            }
        ],
    }


async def test_authentic_but_irrelevant_is_acknowledged_and_not_processed(stack: Stack) -> None:
    """An account update, or a status about a message that is not one of our replies, is
    acknowledged with 200 (so Meta stops retrying) and nothing is recorded or enqueued."""
    await calendar(stack)
    irrelevant = {
        "account-update": _account_update(),
        "status-of-unknown-message": _statuses(
            {"id": "wamid.NOT-ONE-OF-OURS==", "status": "delivered"}
        ),
        "status-we-do-not-track": _statuses({"id": "wamid.NOT-ONE-OF-OURS==", "status": "deleted"}),
    }
    for case, envelope in irrelevant.items():
        response = await stack.post_whatsapp(envelope)
        assert response.status_code == 200, (case, response.text)
        await _nothing_written(stack)


async def test_message_for_an_unknown_number_is_acknowledged_and_logged_by_id(
    stack: Stack, all_logs: pytest.LogCaptureFixture
) -> None:
    """A message to a phone number id no inn has: 200, nothing written, one warning
    ``whatsapp_unknown_number`` naming that id, and the sender's number in no log record."""
    await calendar(stack)
    response = await stack.post_whatsapp(_envelope("oi", number_id="pn-nobody"))
    assert response.status_code == 200, response.text
    await _nothing_written(stack)
    warnings = [r for r in all_logs.records if r.getMessage() == "whatsapp_unknown_number"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert getattr(warnings[0], "phone_number_id", None) == "pn-nobody"
    formatter = JsonFormatter()
    logged = [f"{formatter.format(r)} {vars(r)!r}" for r in all_logs.records]
    assert any("http_request" in line for line in logged)  # the access line was captured
    for line in logged:
        assert GUEST not in line and GUEST[-8:] not in line


# ---- one delivery, many messages ------------------------------------------------------------


async def test_two_entries_of_two_messages_are_four_receipts_tasks_and_replies(
    stack: Stack,
) -> None:
    """An envelope with 2 entries, each one change with 2 messages: every message gets its
    receipt, its task and its reply."""
    await calendar(stack)
    ids = [_wamid() for _ in range(4)]
    envelope = _envelope("oi", sender=GUEST, message_id=ids[0])
    second = _envelope("oi", sender=OTHER_GUEST, message_id=ids[2])
    envelope["entry"].append(second["entry"][0])
    for entry, message_id in ((0, ids[1]), (1, ids[3])):
        messages = _value(envelope, entry)["messages"]
        messages.append({**messages[0], "id": message_id})
    assert [len(_value(envelope, e)["messages"]) for e in (0, 1)] == [2, 2]

    response = await stack.post_whatsapp(envelope)
    assert response.status_code == 200, response.text
    receipts = await stack.pool.fetch(
        "SELECT external_id FROM processed_events WHERE source = 'whatsapp'"
    )
    assert sorted(r["external_id"] for r in receipts) == sorted(ids)
    bodies = [orjson.loads(task.http_request.body) for task in _message_tasks(stack)]
    assert sorted(body["event_id"] for body in bodies) == sorted(ids)
    assert len(await _replies(stack, 2, GUEST)) == 2
    assert len(await _replies(stack, 2, OTHER_GUEST)) == 2
    await _settled(stack)
    assert len(stack.graph.sent) == 4


# ---- duplicates, redeliveries, outages ------------------------------------------------------


async def test_same_message_fifty_times_concurrently_is_answered_once(stack: Stack) -> None:
    """Meta delivering one message 50 times at once: every delivery is acknowledged, and
    there is one receipt, one inbound message, one reply row and one reply sent, also once
    every task has run."""
    await calendar(stack)
    envelope = _envelope("oi", message_id="wamid.FIFTY-TIMES==")
    answers = await asyncio.gather(*(stack.post_whatsapp(envelope) for _ in range(50)))
    assert [a.status_code for a in answers] == [200] * 50
    await _replies(stack, 1)
    await _settled(stack)
    counts = await stack.pool.fetchrow(
        "SELECT (SELECT count(*) FROM processed_events WHERE source = 'whatsapp') AS receipts,"
        " (SELECT count(*) FROM messages WHERE direction = 'in') AS inbound,"
        " (SELECT count(*) FROM messages WHERE direction = 'out') AS outbound"
    )
    assert tuple(counts) == (1, 1, 1)
    assert len(_message_tasks(stack)) == 1
    assert len(stack.graph.sent) == 1


async def test_forced_task_redeliveries_still_send_one_reply(stack: Stack) -> None:
    """Cloud Tasks delivering every task 3 more times after its 2xx (at-least-once): the
    message is answered once and its reply sent once."""
    await calendar(stack)
    stack.emulator.extra_deliveries = 3
    response = await stack.post_whatsapp(_envelope("oi"))
    assert response.status_code == 200, response.text
    await _replies(stack, 1)
    await _settled(stack, extra=3)
    deliveries = [d for d in stack.emulator.deliveries if d.status == 200]
    assert len(deliveries) >= 8  # the message task and the send task, 4 times each
    assert len(stack.graph.sent) == 1
    assert await stack.pool.fetchval("SELECT count(*) FROM messages WHERE direction = 'out'") == 1


async def test_enqueue_failure_is_503_and_meta_redelivery_is_answered_once(
    stack: Stack,
) -> None:
    """With Cloud Tasks down the webhook answers 503 and keeps the receipt, not marked
    enqueued; Meta's redeliveries after recovery enqueue it and the guest gets one reply."""
    await calendar(stack)
    envelope = _envelope("oi", message_id="wamid.OUTAGE==")
    await stack.emulator.stop()
    down = await stack.post_whatsapp(envelope)
    assert down.status_code == 503 and down.json() == {"error": "service_unavailable"}
    receipt = await stack.pool.fetchrow(
        "SELECT external_id, enqueued_at, processed_at FROM processed_events"
        " WHERE source = 'whatsapp'"
    )
    assert receipt is not None and receipt["external_id"] == "wamid.OUTAGE=="
    assert receipt["enqueued_at"] is None and receipt["processed_at"] is None
    assert stack.emulator.tasks == {} and stack.graph.sent == []
    await stack.emulator.start()

    async def redelivered() -> bool:  # Meta retries until it gets a 2xx
        return (await stack.post_whatsapp(envelope)).status_code == 200

    await eventually(redelivered)
    await _replies(stack, 1)
    await _settled(stack)
    assert len(stack.graph.sent) == 1
    enqueued = await stack.pool.fetchval(
        "SELECT enqueued_at FROM processed_events WHERE external_id = 'wamid.OUTAGE=='"
    )
    assert enqueued is not None
    assert await stack.pool.fetchval("SELECT count(*) FROM processed_events") == 1


# ---- status updates -----------------------------------------------------------------------


async def _sent_reply(stack: Stack) -> str:
    """Say "oi" and wait until the reply is recorded as sent; returns Graph's id for it."""
    await calendar(stack)
    assert (await stack.post_whatsapp(_envelope("oi"))).status_code == 200
    [reply] = await _replies(stack, 1)
    wamid: str = reply["id"]

    async def recorded() -> bool:  # Graph answered before the worker committed
        return (
            await stack.pool.fetchval(
                "SELECT status FROM messages WHERE direction = 'out' AND provider_message_id = $1",
                wamid,
            )
            == "sent"
        )

    await eventually(recorded)
    return wamid


async def _status_of(stack: Stack, wamid: str) -> tuple[str, str | None]:
    row = await stack.pool.fetchrow(
        "SELECT status, last_error FROM messages WHERE provider_message_id = $1", wamid
    )
    assert row is not None
    return row["status"], row["last_error"]


async def _report(stack: Stack, wamid: str, status: str, **extra: Any) -> tuple[str, str | None]:
    response = await stack.post_whatsapp(_statuses({"id": wamid, "status": status, **extra}))
    assert response.status_code == 200, response.text
    return await _status_of(stack, wamid)


async def test_status_updates_move_a_reply_forward_only(stack: Stack) -> None:
    """Graph's statuses for one of our replies: delivered, then read; a late ``sent`` does
    not move it back; ``failed`` (with Graph's error code) is recorded and is final."""
    wamid = await _sent_reply(stack)
    assert await _report(stack, wamid, "delivered") == ("delivered", None)
    assert await _report(stack, wamid, "read") == ("read", None)
    assert await _report(stack, wamid, "sent") == ("read", None)
    assert await _report(stack, wamid, "delivered") == ("read", None)
    status, error = await _report(
        stack, wamid, "failed", errors=[{"code": 131047, "title": "Re-engagement message"}]
    )
    assert status == "failed" and error is not None and "131047" in error
    assert (await _report(stack, wamid, "delivered"))[0] == "failed"
    assert (await _report(stack, wamid, "read"))[0] == "failed"
    # Statuses touch only our reply: nothing new was received, written or sent.
    counts = await _counts(stack)
    assert (counts["processed_events"], counts["messages"]) == (1, 2)
    assert len(stack.graph.sent) == 1


async def test_failed_status_straight_after_sent(stack: Stack) -> None:
    """A reply that Meta could not deliver goes from sent to failed, keeping the code."""
    wamid = await _sent_reply(stack)
    status, error = await _report(stack, wamid, "failed", errors=[{"code": 131047}])
    assert status == "failed" and error is not None and "131047" in error


# ---- task bodies --------------------------------------------------------------------------


async def test_message_tasks_carry_ids_only(stack: Stack) -> None:
    """Every /tasks/whatsapp/message task body is a JSON object of ids (source and Meta's
    message id): the sender's number and the text travel only sealed, in the receipt."""
    cal = await calendar(stack)
    said = [
        "oi",
        f"de {cal.start:%d/%m/%Y} a {cal.start + dt.timedelta(days=2):%d/%m/%Y}, 2 pessoas",
    ]
    ids = []
    for n, text in enumerate(said, start=1):
        message_id = _wamid()
        ids.append(message_id)
        assert (
            await stack.post_whatsapp(_envelope(text, message_id=message_id))
        ).status_code == 200
        await _replies(stack, n)
    await _settled(stack)
    tasks = _message_tasks(stack)
    assert len(tasks) == len(said)
    for task in tasks:
        raw = task.http_request.body
        body = orjson.loads(raw)
        assert body == {"source": "whatsapp", "event_id": body["event_id"]}
        assert body["event_id"] in ids
        for secret in [GUEST, GUEST[-8:], *said]:
            assert secret.encode() not in raw
    for task in stack.emulator.tasks.values():  # the send tasks too
        for secret in [GUEST, GUEST[-8:], *said]:
            assert secret.encode() not in task.http_request.body
