"""Every WhatsApp message type handled on purpose, end to end on real published payloads
(tests/fixtures/whatsapp/): what each gets back, or that it gets nothing; that nothing of
them hands a guest to the staff; Evolution guests addressed by their LID."""

from __future__ import annotations

import copy
import datetime as dt
import time
import uuid
from typing import Any

import orjson
import pytest
from pythonjsonlogger.json import JsonFormatter

from app.conversations import replies
from app.dev.fake_evolution import FakeEvolution
from tests.e2e.conftest import INSTANCE, Stack, calendar, rows_as_text
from tests.e2e.test_whatsapp_evolution import post
from tests.e2e.test_whatsapp_flow import _settled
from tests.messaging.test_readings import fixture
from tests.support import eventually

GUEST = "5511944443333"
NUMBER_ID = "pn-test-inn"
ASK = "tem quarto de {0:%d/%m/%Y} a {1:%d/%m/%Y} para 2 pessoas?"


def _meta(name: str, sender: str = GUEST, **part: Any) -> dict[str, Any]:
    """A published Meta envelope, delivered to our test inn from ``sender``, with a fresh
    message id; ``part`` replaces fields of the message's own object (its text, caption…)."""
    body = orjson.loads(fixture(f"meta/{name}"))
    value = body["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = NUMBER_ID
    for contact in value.get("contacts", []):
        contact["wa_id"] = sender
    message = value["messages"][0]
    message["from"] = sender
    message["id"] = f"wamid.{uuid.uuid4().hex}"
    message["timestamp"] = str(int(time.time()))
    kind = message["type"]
    for path, replacement in part.items():
        target = message[kind]
        *parents, leaf = path.split("__")
        for parent in parents:
            target = target[parent]
        target[leaf] = replacement
    return body


async def _replies(stack: Stack, sender: str = GUEST) -> list[str]:
    await _settled(stack)
    return [m["text"] for m in stack.graph.sent if m["to"] == sender]


async def _deliver(stack: Stack, body: dict[str, Any]) -> None:
    answer = await stack.post_whatsapp(body)
    assert answer.status_code == 200, answer.text


async def _state(stack: Stack) -> str | None:
    return await stack.pool.fetchval(
        "SELECT c.state FROM conversations c JOIN contacts k USING (contact_hash)"
        " ORDER BY c.updated_at DESC LIMIT 1"
    )


SILENT = [
    "reaction.json",
    "reaction_removed.json",
    "reaction_removed_no_emoji.json",
    "edit.json",
    "revoke.json",
    "system_user_changed_number.json",
    "unsupported.json",
    "order.json",
]
MEDIA = [
    "image.json",
    "sticker.json",
    "location.json",
    "contacts.json",
    "document_caption.json",
]


@pytest.mark.parametrize("name", SILENT)
async def test_meta_messages_with_nothing_to_answer_get_no_reply(stack: Stack, name: str) -> None:
    """A reaction, un-reaction, edit, deletion, system notice, unsupported message or order:
    recorded (receipt 'recorded', the inbound row by its kind), no reply, state unchanged."""
    await calendar(stack)
    await _deliver(stack, _meta(name))

    async def recorded() -> str | None:
        return await stack.pool.fetchval("SELECT outcome FROM processed_events")

    assert await eventually(recorded) == "recorded"
    assert await _replies(stack) == []
    assert await stack.pool.fetchval("SELECT count(*) FROM messages WHERE direction = 'in'") == 1
    assert await _state(stack) == "new"


@pytest.mark.parametrize("name", MEDIA)
async def test_meta_media_without_words_asks_for_text(stack: Stack, name: str) -> None:
    """A sticker, a location, a contact card, a photo without a caption (and a document
    whose caption we blank): one short reply asking for text."""
    await calendar(stack)
    body = _meta(name, caption="") if name == "document_caption.json" else _meta(name)
    await _deliver(stack, body)
    [reply] = await eventually(lambda: _replies(stack))
    assert reply.startswith("Por enquanto só consigo ler mensagens escritas")


async def test_meta_request_welcome_is_greeted(stack: Stack) -> None:
    """A guest opening the chat (request_welcome) gets the greeting."""
    await calendar(stack)
    await _deliver(stack, _meta("request_welcome.json"))
    [reply] = await eventually(lambda: _replies(stack))
    assert reply.startswith("Olá!") and await _state(stack) == "collecting"


@pytest.mark.parametrize(
    ("name", "part"),
    [
        ("image_caption.json", "caption"),
        ("video_caption.json", "caption"),
        ("document_caption.json", "caption"),
        ("button.json", "payload"),
        ("interactive_button_reply.json", "button_reply__id"),
        ("interactive_list_reply.json", "list_reply__id"),
    ],
)
async def test_captions_payloads_and_ids_are_read_as_words(
    stack: Stack, name: str, part: str
) -> None:
    """A caption is the message's text; a template button by its payload and a tapped reply
    by its id, never by the title shown: each asking for dates gets the quote."""
    cal = await calendar(stack)
    ask = ASK.format(cal.start, cal.start + dt.timedelta(days=2))
    await _deliver(stack, _meta(name, **{part: ask}))
    [reply] = await eventually(lambda: _replies(stack))
    assert "1. Std" in reply, reply


async def test_two_reactions_or_an_image_and_a_sticker_never_hand_off(stack: Stack) -> None:
    """Two 👍 in a row get no reply; a photo then a sticker get two requests for text: the
    conversation is never handed to the staff (no handoff fact)."""
    await calendar(stack)
    await _deliver(stack, _meta("reaction.json"))
    await _deliver(stack, _meta("reaction.json"))
    assert await _replies(stack) == []
    await _deliver(stack, _meta("image.json"))
    await _deliver(stack, _meta("sticker.json"))
    replies = await eventually(lambda: _replies(stack))
    assert len(replies) == 2 and await _state(stack) != "human"
    handoffs = "SELECT count(*) FROM outbox_events WHERE event_type = 'conversation.handoff'"
    assert await stack.pool.fetchval(handoffs) == 0


@pytest.mark.parametrize(
    "name",
    [
        "field_account_update.json",
        "field_message_template_status_update.json",
        "field_calls_connect.json",
        "field_calls_status.json",
    ],
)
async def test_meta_fields_other_than_messages_write_nothing(stack: Stack, name: str) -> None:
    """Account, template and call webhooks answer 200 and write nothing."""
    await _deliver(stack, orjson.loads(fixture(f"meta/{name}")))
    written = await stack.pool.fetchval(
        "SELECT (SELECT count(*) FROM processed_events) + (SELECT count(*) FROM messages)"
    )
    assert written == 0 and stack.emulator.tasks == {}


# ---- Evolution --------------------------------------------------------------------------

PHONE = "5511999990001"  # the published captures' guest (already a sample number)
LID = "111111111111111@lid"


def _evolution(name: str, **changes: Any) -> dict[str, Any]:
    """A published Evolution event from our test instance, with a fresh message id."""
    body = copy.deepcopy(orjson.loads(fixture(f"evolution/{name}")))
    body["instance"] = INSTANCE
    body["data"]["key"]["id"] = uuid.uuid4().hex[:20].upper()
    for path, value in changes.items():
        target = body["data"]
        *parents, leaf = path.split("__")
        for parent in parents:
            target = target[parent]
        if value is None:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    return body


async def _gateway_replies(stack: Stack, gateway: FakeEvolution, to: str) -> list[str]:
    await _settled(stack)
    return [m["text"] for m in gateway.sent if m["to"] == to]


async def test_evolution_kinds_get_their_replies(stack: Stack, gateway: FakeEvolution) -> None:
    """A captioned photo asking for dates is quoted; a voice note (no model here), a bare
    photo and a sticker each get the request for text; none hands the guest off."""
    cal = await calendar(stack)
    ask = ASK.format(cal.start, cal.start + dt.timedelta(days=2))
    body = _evolution("image_caption.json", message__imageMessage__caption=ask)
    assert await post(stack, body) == 200
    quote = (await eventually(lambda: _gateway_replies(stack, gateway, PHONE)))[0]
    assert "1. Std" in quote
    for name in ("audio_voice_note.json", "v1_image_no_caption.json", "v1_sticker.json"):
        body = _evolution(name, key__remoteJid=f"{PHONE}@s.whatsapp.net")
        assert await post(stack, body) == 200

    async def four() -> list[str]:
        texts = await _gateway_replies(stack, gateway, PHONE)
        return texts if len(texts) == 4 else []

    later = (await eventually(four))[1:]
    assert sorted(later) == sorted(
        [replies.render("voice_write_instead", "pt"), *[replies.render("write_please", "pt")] * 2]
    ), later
    handoffs = "SELECT count(*) FROM outbox_events WHERE event_type = 'conversation.handoff'"
    assert await stack.pool.fetchval(handoffs) == 0


async def test_a_lid_guest_is_answered_at_the_phone_or_the_lid(
    stack: Stack, gateway: FakeEvolution
) -> None:
    """A guest addressed by LID with the phone in remoteJidAlt is answered at the phone; a
    LID guest whose envelope carries no phone is answered at the full @lid JID."""
    await calendar(stack)
    assert await post(stack, _evolution("lid_remote_jid_alt.json")) == 200
    assert len(await eventually(lambda: _gateway_replies(stack, gateway, PHONE))) == 1
    other = "222222222222222@lid"
    body = _evolution("lid_sender_pn.json", key__remoteJid=other, key__senderPn=None)
    assert await post(stack, body) == 200
    assert len(await eventually(lambda: _gateway_replies(stack, gateway, other))) == 1


@pytest.mark.parametrize("phone_first", [True, False])
async def test_one_lid_guest_is_one_contact_and_one_conversation(
    stack: Stack, gateway: FakeEvolution, phone_first: bool
) -> None:
    """The same guest writing once with senderPn and once without, in either order, is one
    contact and one conversation (the earlier LID-only one moves to the phone's contact);
    the LID is stored only encrypted and logged nowhere."""
    await calendar(stack)
    with_phone = _evolution("lid_sender_pn.json")
    without = _evolution("lid_sender_pn.json", key__senderPn=None)
    for body in (with_phone, without) if phone_first else (without, with_phone):
        assert await post(stack, body) == 200
        await _settled(stack)
    conversations = await stack.pool.fetch(
        "SELECT contact_hash FROM conversations WHERE property_id ="
        " (SELECT id FROM properties WHERE code = 'evo-inn')"
    )
    assert len(conversations) == 1
    messages = await stack.pool.fetchval(
        "SELECT count(*) FROM messages WHERE direction = 'in' AND conversation_id ="
        " (SELECT id FROM conversations WHERE contact_hash = $1)",
        conversations[0]["contact_hash"],
    )
    assert messages == 2
    assert LID.split("@")[0] not in await rows_as_text(stack)


async def test_no_number_lid_or_text_of_these_flows_in_logs_or_rows(
    stack: Stack, gateway: FakeEvolution, all_logs: pytest.LogCaptureFixture
) -> None:
    """Captioned, tapped, silent, media and LID messages leave no number, LID or words in
    any log line (every logger at DEBUG) or in any row outside the encrypted columns."""
    cal = await calendar(stack)
    ask = ASK.format(cal.start, cal.start + dt.timedelta(days=2))
    await _deliver(stack, _meta("image_caption.json", caption=ask))
    await _deliver(stack, _meta("interactive_list_reply.json", list_reply__id=ask))
    await _deliver(stack, _meta("reaction.json"))
    await _deliver(stack, _meta("location.json"))
    assert await post(stack, _evolution("lid_remote_jid_alt.json")) == 200
    assert await post(stack, _evolution("lid_sender_pn.json", key__senderPn=None)) == 200
    await _settled(stack)
    formatter = JsonFormatter()
    logged = "\n".join(f"{formatter.format(r)} {vars(r)!r}" for r in all_logs.records)
    stored = await rows_as_text(stack)
    for secret in (GUEST, PHONE, LID.split("@")[0], ask, "Olá", "Por enquanto"):
        assert secret not in logged, secret
        assert secret not in stored, secret
