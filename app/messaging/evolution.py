"""Evolution API (a self-hosted WhatsApp gateway): inbound webhook events and sending text.

An instance posts ``{event, instance, data, …}``. Only a guest's new message becomes a task:
``messages.upsert`` (``MESSAGES_UPSERT`` in v1) whose ``data.key.fromMe`` is false; its id
is ``data.key.id``, the sender ``data.key.remoteJid`` (``<digits>@s.whatsapp.net``), the text
``data.message.conversation`` or ``data.message.extendedTextMessage.text``. Each instance
authenticates with its own secret in ``X-Webhook-Secret``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from app.errors import BadRequest, Unauthorized
from app.messaging.meta import MAX_TEXT, InboundMessage
from app.messaging.sending import SendOutcome, network_failure, outcome_of

MAX_BODY = 256 * 1024
SECRET_HEADER = "x-webhook-secret"  # noqa: S105 (a header name)


@dataclass(frozen=True)
class Event:
    instance: str
    message: InboundMessage | None  # None: not a guest's new message (acknowledged, ignored)


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
    jid = key.get("remoteJid")
    message_id = key.get("id")
    if not isinstance(jid, str) or not jid.endswith("@s.whatsapp.net"):
        return Event(instance, None)  # groups and broadcasts are not guests
    if (
        not isinstance(message_id, str)
        or not message_id
        or len(message_id) > 255
        or "\x00" in message_id + jid
    ):
        raise BadRequest("message has no id")
    content = data.get("message")
    text: Any = None
    if isinstance(content, dict):
        extended = content.get("extendedTextMessage")
        text = content.get("conversation") or (
            extended.get("text") if isinstance(extended, dict) else None
        )
    return Event(
        instance,
        InboundMessage(
            phone_number_id=instance,
            message_id=message_id,
            sender=jid.split("@", 1)[0],
            kind="text" if isinstance(text, str) else "other",
            text=text[:MAX_TEXT].replace("\x00", "") if isinstance(text, str) else "",
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
