"""Every kind of WhatsApp message is read on purpose, on real published payloads
(tests/fixtures/whatsapp/SOURCES.md names where each comes from)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from app.messaging import evolution, meta

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "whatsapp"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# (fixture, how the bot reads it, the text it reads)
META = [
    ("text.json", "text", "Body Text"),
    ("text_reply.json", "text", None),
    ("image_caption.json", "text", "CAPTION_TEXT"),
    ("video_caption.json", "text", None),
    ("document_caption.json", "text", None),
    ("button.json", "text", "callback_data"),  # the payload, not the button's text
    ("interactive_button_reply.json", "text", "callback_data"),  # the id, not the title
    ("interactive_list_reply.json", "text", "callback_data"),
    ("request_welcome.json", "welcome", ""),
    ("reaction.json", "silent", ""),
    ("reaction_removed.json", "silent", ""),
    ("reaction_removed_no_emoji.json", "silent", ""),
    ("edit.json", "silent", ""),
    ("revoke.json", "silent", ""),
    ("system_user_changed_number.json", "silent", ""),
    ("unsupported.json", "silent", ""),
    ("unsupported_with_type.json", "silent", ""),
    ("order.json", "silent", ""),
    ("image.json", "media", ""),
    ("audio.json", "voice", ""),
    ("audio_voice.json", "voice", ""),
    ("sticker.json", "media", ""),
    ("sticker_animated.json", "media", ""),
    ("location.json", "media", ""),
    ("contacts.json", "media", ""),
]


@pytest.mark.parametrize(("name", "reading", "text"), META)
def test_meta_messages_are_read_by_kind(name: str, reading: str, text: str | None) -> None:
    """A Meta message of each type is read as words (text, caption, a tapped button's
    payload or id), a welcome, media to ask text for, or silence; with its text."""
    envelope = meta.parse_envelope(fixture(f"meta/{name}"))
    [message] = envelope.messages
    assert message.reading == reading, name
    if text is not None:
        assert message.text == text
    assert bool(message.text) == (reading == "text")
    # A voice note says where its audio is: Graph's media id, and its type.
    assert (message.media is not None) == (reading == "voice")
    if message.media is not None:
        audio = orjson.loads(fixture(f"meta/{name}"))["entry"][0]["changes"][0]["value"]
        assert message.media == {
            "id": audio["messages"][0]["audio"]["id"],
            "mime_type": audio["messages"][0]["audio"]["mime_type"],
        }


@pytest.mark.parametrize(
    "name",
    [
        "field_account_update.json",
        "field_account_update_violation.json",
        "field_message_template_status_update.json",
        "field_message_template_status_update_rejected.json",
        "field_calls_connect.json",
        "field_calls_terminate.json",
        "field_calls_status.json",
    ],
)
def test_meta_fields_other_than_messages_carry_nothing(name: str) -> None:
    """Account, template and call updates hold no message and no status of ours."""
    envelope = meta.parse_envelope(fixture(f"meta/{name}"))
    assert envelope.messages == () and envelope.statuses == ()


def test_meta_statuses_carry_our_callback_data() -> None:
    """Every status type parses; the one sent with biz_opaque_callback_data keeps it only
    when it is one of our ids (a UUID)."""
    for name in ("sent", "delivered", "read", "failed"):
        [status] = meta.parse_envelope(fixture(f"meta/status_{name}.json")).statuses
        assert status.status == name and status.ours is None
    body = orjson.loads(fixture("meta/status_sent_biz_opaque_callback_data.json"))
    [published] = meta.parse_envelope(orjson.dumps(body)).statuses
    assert published.ours is None  # pywa's sample value is not one of our ids
    ours = "6f1c2b8e-0d5a-4c7e-9b7a-1f2e3d4c5b6a"
    body["entry"][0]["changes"][0]["value"]["statuses"][0]["biz_opaque_callback_data"] = ours
    [status] = meta.parse_envelope(orjson.dumps(body)).statuses
    assert str(status.ours) == ours


# (fixture, how the bot reads it, the sender it names, the LID it names)
EVOLUTION = [
    ("conversation.json", "text", "5511999990001", None),
    ("v1_conversation.json", "text", "5511999990001", None),
    ("image_caption.json", "text", "5511999990001", None),
    ("video_caption.json", "text", "5511999990001", None),
    ("v1_image_no_caption.json", "media", "5511999990001", None),
    ("audio_voice_note.json", "voice", "5511999990000", None),
    ("v1_sticker.json", "media", "5511999990001", None),
    ("lid_remote_jid_alt.json", "text", "5511999990001", "111111111111111@lid"),
    ("lid_sender_pn.json", "text", "5511999990001", "111111111111111@lid"),
]


@pytest.mark.parametrize(("name", "reading", "sender", "lid"), EVOLUTION)
def test_evolution_messages_are_read_by_kind(
    name: str, reading: str, sender: str, lid: str | None
) -> None:
    """A guest's Evolution message of each kind is read like Meta's; a guest addressed by
    their LID is named by the phone the envelope carries, with the LID beside it."""
    event = evolution.parse_event(fixture(f"evolution/{name}"))
    assert event.message is not None, name
    assert (event.message.reading, event.message.sender, event.message.lid) == (
        reading,
        sender,
        lid,
    )
    assert bool(event.message.text) == (reading == "text")
    # A voice note is fetched by its message id from the instance.
    if reading == "voice":
        assert event.message.media is not None
        assert event.message.media["id"] == event.message.message_id
        assert event.message.media["mime_type"].startswith("audio/")


def test_a_lid_guest_without_a_phone_is_named_by_the_lid() -> None:
    """The LID capture with its phone taken out: the guest is the LID itself."""
    body = orjson.loads(fixture("evolution/lid_sender_pn.json"))
    del body["data"]["key"]["senderPn"]
    event = evolution.parse_event(orjson.dumps(body))
    assert event.message is not None
    assert event.message.sender == event.message.lid == "111111111111111@lid"


@pytest.mark.parametrize(
    "name",
    [
        "from_me_conversation.json",
        "from_me_image_caption.json",
        "v1_from_me_conversation.json",
        "v1_from_me_extended_text_quoted_document.json",
        "group_conversation_lid_participant.json",
        "group_extended_text_lid_participant.json",
        "messages_update.json",
        "messages_update_deleted.json",
        "connection_update_close.json",
        "v1_connection_update_close.json",
        "v1_connection_update_connecting.json",
    ],
)
def test_evolution_events_that_are_not_a_guests_message(name: str) -> None:
    """Our own messages, groups (their LID participants too), updates and connection
    events are acknowledged and carry no guest message."""
    assert evolution.parse_event(fixture(f"evolution/{name}")).message is None
