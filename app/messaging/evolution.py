"""Evolution API (a self-hosted WhatsApp gateway): inbound webhook events and sending text.

An instance posts ``{event, instance, data, …}``. Only a guest's new message becomes a task:
``messages.upsert`` (``MESSAGES_UPSERT`` in v1) whose ``data.key.fromMe`` is false, in a
one-to-one chat; its id is ``data.key.id``. The chat is ``data.key.remoteJid``: a phone
number (``<digits>@s.whatsapp.net``) or, on recent WhatsApp versions, the guest's LID
(``<lid>@lid``), with the phone in ``remoteJidAlt`` or ``senderPn`` when the gateway knows
it. Groups, broadcasts and channels are not guests. Each instance authenticates with its
own secret in ``X-Webhook-Secret``.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from app.errors import BadRequest, Unauthorized
from app.messaging.inbound import InboundMessage, Reading, clean
from app.messaging.sending import SendOutcome, network_failure, outcome_of

# A text event is a few KiB; one whose instance sends media as base64 (webhook_base64) is
# as large as the photo or voice note, and a guest's captioned photo must not be refused.
MAX_BODY = 8 * 1024 * 1024
SECRET_HEADER = "x-webhook-secret"  # noqa: S105 (a header name)
_PHONE = re.compile(r"^(\d{6,20})@s\.whatsapp\.net$")
_LID = re.compile(r"^\d{6,30}@lid$")

# Message kinds (the key under data.message), by how the bot reads them.
_TEXT = {"conversation": None, "extendedTextMessage": "text"}
_CAPTIONED = frozenset({"imageMessage", "videoMessage", "documentMessage"})
_TAPPED = {  # a tapped button or list row: by its id
    "buttonsResponseMessage": ("selectedButtonId",),
    "templateButtonReplyMessage": ("selectedId",),
    "listResponseMessage": ("singleSelectReply", "selectedRowId"),
}
_SILENT = frozenset({"reactionMessage", "protocolMessage", "editedMessage", "pollUpdateMessage"})
# Parts of data.message that are not the message itself.
_NOT_CONTENT = frozenset({"messageContextInfo", "senderKeyDistributionMessage", "base64"})


@dataclass(frozen=True)
class Event:
    instance: str
    message: InboundMessage | None  # None: not a guest's new message (acknowledged, ignored)


def _guest(key: dict[str, Any]) -> tuple[str, str | None] | None:
    """Who wrote: (their phone's digits, or their LID JID when no phone is given; their LID
    JID if they were addressed by it). None for a chat that is not one guest."""
    jid = key.get("remoteJid")
    if not isinstance(jid, str):
        return None
    phone = _PHONE.match(jid)
    if phone:
        return phone.group(1), None
    if not _LID.match(jid):
        return None  # groups (@g.us), broadcasts and status, channels (@newsletter)
    for alternative in (key.get("remoteJidAlt"), key.get("senderPn")):
        found = _PHONE.match(alternative) if isinstance(alternative, str) else None
        if found:
            return found.group(1), jid
    return jid, jid


def _content_kind(data: dict[str, Any], content: dict[str, Any]) -> str:
    declared = data.get("messageType")
    if isinstance(declared, str) and declared in content:
        return declared
    return next((k for k in content if k not in _NOT_CONTENT), "unknown")


def _reading(kind: str, part: Any) -> tuple[Reading, str]:
    part = part if isinstance(part, dict) else {"text": part}
    if kind in _TEXT:
        field = _TEXT[kind]
        return "text", clean(part.get(field) if field else part.get("text"))
    if kind == "documentWithCaptionMessage":
        inner = part.get("message")
        part = inner.get("documentMessage") if isinstance(inner, dict) else None
        kind = "documentMessage"
        part = part if isinstance(part, dict) else {}
    if kind in _CAPTIONED and clean(part.get("caption")):
        return "text", clean(part.get("caption"))
    if kind in _TAPPED:
        value: Any = part
        for step in _TAPPED[kind]:
            value = value.get(step) if isinstance(value, dict) else None
        return "text", clean(value)
    if kind in _SILENT:
        return "silent", ""
    return "media", ""  # sticker, location, contact, a bare photo, …


def parse_event(body: bytes) -> Event:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("body is not JSON") from None
    if not isinstance(payload, dict):
        raise BadRequest("event must be a JSON object")
    instance = payload.get("instance")
    if not isinstance(instance, str) or not instance or len(instance) > 100 or "\x00" in instance:
        raise BadRequest("event has no instance")
    name = str(payload.get("event", "")).upper().replace(".", "_")
    data = payload.get("data")
    if not isinstance(data, dict):
        data = {}
    key = data.get("key")
    if name != "MESSAGES_UPSERT" or not isinstance(key, dict) or key.get("fromMe") is not False:
        return Event(instance, None)
    guest = _guest(key)
    if guest is None:
        return Event(instance, None)
    message_id = key.get("id")
    if (
        not isinstance(message_id, str)
        or not message_id
        or len(message_id) > 255
        or "\x00" in message_id
    ):
        raise BadRequest("message has no id")
    content = data.get("message")
    if not isinstance(content, dict):
        content = {}
    kind = _content_kind(data, content)
    reading, text = _reading(kind, content.get(kind))
    media = None
    if kind == "audioMessage":  # a voice note (ptt) or an audio file: the instance serves it
        part = content.get(kind)
        mime_type = part.get("mimetype") if isinstance(part, dict) else None
        media = {"id": message_id, "mime_type": clean(mime_type)[:100] or "audio/ogg"}
    sender, lid = guest
    return Event(
        instance,
        InboundMessage(
            phone_number_id=instance,
            message_id=message_id,
            sender=sender,
            kind=clean(kind)[:32],
            reading="voice" if media else reading,
            text=text,
            lid=lid,
            media=media,
        ),
    )


def verify_secret(header: str | None, expected: str | None) -> None:
    if (
        not header
        or expected is None
        or not hmac.compare_digest(header.encode(), expected.encode())
    ):
        raise Unauthorized("missing or invalid X-Webhook-Secret")


async def send_text(
    client: httpx.AsyncClient, api_base: str, instance: str, api_key: str, to: str, text: str
) -> SendOutcome:
    """POST <api_base>/message/sendText/<instance> with the instance's API key."""
    try:
        response = await client.post(
            f"{api_base.rstrip('/')}/message/sendText/{instance}",
            headers={"apikey": api_key},
            json={"number": to, "text": text},
        )
    except httpx.HTTPError as exc:
        return network_failure(exc)
    return outcome_of(response, lambda answer: answer["key"]["id"])
