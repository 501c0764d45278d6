"""A guest's message as both WhatsApp providers deliver it, and how the bot reads it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# text: words to understand (a text, a caption, a tapped button's payload or id);
# welcome: the guest opened the chat (Meta's request_welcome): greet them;
# voice: a voice note (``media`` says where its audio is): transcribed, then read as text;
# media: something to look at (a sticker, a location, a contact card, a photo without a
#   caption): ask for text, never count it as "not understood";
# silent: nothing to answer (a reaction, an edit, a deletion, a system notice, an order, an
#   unsupported message): recorded, no reply, never counted as "not understood".
Reading = Literal["text", "welcome", "voice", "media", "silent"]

MAX_TEXT = 4096  # WhatsApp's own limit for a text message body


@dataclass(frozen=True)
class InboundMessage:
    phone_number_id: str  # which inn it was sent to: Meta's number id, or the instance
    message_id: str  # the provider's id, as sent
    # The guest's number (digits): PII. For a guest Evolution addresses only by their
    # WhatsApp LID, the full "<lid>@lid" JID (PII too): replies go to it.
    sender: str
    kind: str  # the provider's message type: text, image, reaction, …
    reading: Reading
    text: str  # what the guest wrote ("" when nothing to read): PII
    # The guest's "<lid>@lid" JID when the provider gave one (PII): it ties the messages
    # that carry the phone to those that do not, so one guest stays one contact.
    lid: str | None = None
    # A voice note's audio at the provider: {"id", "mime_type"} (Meta's media id, or the
    # Evolution message id its instance serves the media by).
    media: dict[str, str] | None = None


def clean(text: object) -> str:
    """Text as it may be stored: capped, and without NUL (valid JSON, no Postgres text)."""
    return text[:MAX_TEXT].replace("\x00", "") if isinstance(text, str) else ""
