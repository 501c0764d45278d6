"""Meta WhatsApp Cloud API: webhook signatures, inbound envelopes, and sending text.

An envelope is validated whole before anything is written: a delivery we cannot read is
refused (400) and Meta shows it as failed, rather than half of it being recorded.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from app.errors import BadRequest, Unauthorized
from app.messaging.inbound import InboundMessage, Reading, clean
from app.messaging.sending import SendOutcome, network_failure, outcome_of

# Generous for text messages (a few KiB each); media arrive as ids, not bytes.
MAX_BODY = 256 * 1024
GRAPH_TIMEOUT = httpx.Timeout(5.0, connect=2.0)
# Graph's throttling codes, sometimes sent with a 400: retry later, like a 429.
_THROTTLED = {4, 80007, 130429, 131048, 131056}


STATUSES = ("sent", "delivered", "read", "failed")


@dataclass(frozen=True)
class StatusUpdate:
    message_id: str  # the id Graph gave one of our replies
    status: str  # sent | delivered | read | failed
    error_code: str | None
    # The biz_opaque_callback_data we sent with the reply: our own message id.
    ours: uuid.UUID | None = None


@dataclass(frozen=True)
class Envelope:
    messages: tuple[InboundMessage, ...]
    statuses: tuple[StatusUpdate, ...]


def verify_signature(body: bytes, header: str | None, app_secret: str) -> None:
    """X-Hub-Signature-256 is ``sha256=`` + the hex HMAC of the raw body under the app secret."""
    if not header or not header.startswith("sha256="):
        raise Unauthorized("missing or malformed X-Hub-Signature-256")
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    given = header.removeprefix("sha256=").strip().lower().encode()  # any bytes, no TypeError
    if not hmac.compare_digest(expected.encode(), given):
        raise Unauthorized("invalid X-Hub-Signature-256")


# Nothing to answer: recorded, no reply.
_SILENT = frozenset({"reaction", "edit", "revoke", "system", "unsupported", "order"})
# Media that may carry a caption, read as the message's text.
_CAPTIONED = frozenset({"image", "video", "document"})


def _reading(message: dict[str, Any]) -> tuple[Reading, str]:
    """How the bot reads a message of any type, and its text."""
    kind = message.get("type")
    part = message.get(kind) if isinstance(kind, str) else None
    part = part if isinstance(part, dict) else {}
    if kind == "text":
        return "text", clean(part.get("body"))
    if kind == "button":  # a template's quick reply: its payload is what we put there
        return "text", clean(part.get("payload") or part.get("text"))
    if kind == "interactive":  # a tapped reply button or list row: by its id, not its title
        chosen = part.get("button_reply") or part.get("list_reply")
        return "text", clean(chosen.get("id") if isinstance(chosen, dict) else None)
    if kind in _CAPTIONED and clean(part.get("caption")):
        return "text", clean(part.get("caption"))
    if kind == "request_welcome":
        return "welcome", ""
    if kind in _SILENT:
        return "silent", ""
    return "media", ""  # sticker, location, contacts, an uncaptioned photo, …


def _voice(message: dict[str, Any]) -> dict[str, str] | None:
    """Where a voice note's (or an audio file's) audio is: Graph's media id."""
    audio = message.get("audio") if message.get("type") == "audio" else None
    media_id = audio.get("id") if isinstance(audio, dict) else None
    if not isinstance(media_id, str) or not media_id or len(media_id) > 255:
        return None
    mime_type = audio.get("mime_type") if isinstance(audio, dict) else None
    return {"id": media_id, "mime_type": clean(mime_type)[:100] or "audio/ogg"}


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"{what} must be a list")
    return value


def _id(value: Any, what: str) -> str:
    # NUL is valid JSON but no Postgres text can hold it.
    if not isinstance(value, str) or not value or len(value) > 255 or "\x00" in value:
        raise BadRequest(f"{what} is missing or invalid")
    return value


def _our_id(value: Any) -> uuid.UUID | None:
    """Our message id, when the callback data is one (anything else is not ours)."""
    try:
        return uuid.UUID(value) if isinstance(value, str) and len(value) == 36 else None
    except ValueError:
        return None


def parse_envelope(body: bytes) -> Envelope:
    """Every message and status in every entry and change of the delivery."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("body is not JSON") from None
    if not isinstance(payload, dict):
        raise BadRequest("envelope must be a JSON object")
    messages: list[InboundMessage] = []
    statuses: list[StatusUpdate] = []
    for entry in _list(payload.get("entry"), "entry"):
        if not isinstance(entry, dict):
            raise BadRequest("entry must hold objects")
        for change in _list(entry.get("changes"), "changes"):
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                raise BadRequest("change has no value")
            if change.get("field") != "messages":
                continue  # account and template updates: nothing for us
            metadata = value.get("metadata")
            number_id = _id(
                metadata.get("phone_number_id") if isinstance(metadata, dict) else None,
                "metadata.phone_number_id",
            )
            for message in _list(value.get("messages"), "messages"):
                if not isinstance(message, dict):
                    raise BadRequest("messages must hold objects")
                reading, text = _reading(message)
                media = _voice(message)
                messages.append(
                    InboundMessage(
                        phone_number_id=number_id,
                        message_id=_id(message.get("id"), "message id"),
                        sender=_id(message.get("from"), "message sender"),
                        kind=clean(str(message.get("type") or "unknown"))[:32],
                        reading="voice" if media else reading,
                        text=text,
                        media=media,
                    )
                )
            for status in _list(value.get("statuses"), "statuses"):
                if not isinstance(status, dict):
                    raise BadRequest("statuses must hold objects")
                if status.get("status") not in STATUSES:
                    continue  # e.g. "deleted", "warning": nothing to record
                errors = status.get("errors")
                first = errors[0] if isinstance(errors, list) and errors else None
                code = first.get("code") if isinstance(first, dict) else None
                statuses.append(
                    StatusUpdate(
                        message_id=_id(status.get("id"), "status id"),
                        status=_id(status.get("status"), "status"),
                        error_code=str(code)[:32].replace("\x00", "") if code is not None else None,
                        ours=_our_id(status.get("biz_opaque_callback_data")),
                    )
                )
    return Envelope(tuple(messages), tuple(statuses))


# Meta's language codes for templates, by conversation language.
TEMPLATE_LANGUAGES = {"pt": "pt_BR", "es": "es", "en": "en_US"}


async def send_text(
    client: httpx.AsyncClient,
    token: str,
    phone_number_id: str,
    to: str,
    text: str,
    ours: uuid.UUID,
) -> SendOutcome:
    """A free-form text: only inside the 24-hour customer-service window."""
    return await _send(
        client,
        token,
        phone_number_id,
        ours,
        {"to": to, "type": "text", "text": {"preview_url": True, "body": text}},
    )


# Graph's limit on an interactive message's body; a longer reply goes out as plain text.
MAX_INTERACTIVE_BODY = 1024


async def send_interactive(
    client: httpx.AsyncClient,
    token: str,
    phone_number_id: str,
    to: str,
    text: str,
    interactive: dict[str, Any],
    ours: uuid.UUID,
) -> SendOutcome:
    """A list of options or reply buttons under ``text``: only inside the window. The
    guest's tap comes back as its row's or button's id (``_reading``)."""
    kind, action = interactive["type"], interactive["action"]
    body = {"type": kind, "body": {"text": text}, "action": action}
    return await _send(
        client, token, phone_number_id, ours, {"to": to, "type": "interactive", "interactive": body}
    )


async def send_template(
    client: httpx.AsyncClient,
    token: str,
    phone_number_id: str,
    to: str,
    name: str,
    language: str,
    parameters: list[str],
    ours: uuid.UUID,
) -> SendOutcome:
    """An approved template with its body parameters: what may go out after 24 hours."""
    body = [{"type": "text", "text": value} for value in parameters]
    template = {
        "name": name,
        "language": {"code": TEMPLATE_LANGUAGES.get(language, language)},
        "components": [{"type": "body", "parameters": body}],
    }
    return await _send(
        client, token, phone_number_id, ours, {"to": to, "type": "template", "template": template}
    )


async def _send(
    client: httpx.AsyncClient,
    token: str,
    phone_number_id: str,
    ours: uuid.UUID,
    message: dict[str, Any],
) -> SendOutcome:
    """POST /<phone number id>/messages with our message id as biz_opaque_callback_data,
    which Graph returns in every status of it. Errors are described by status and Graph
    code only."""
    try:
        response = await client.post(
            f"{phone_number_id}/messages",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "biz_opaque_callback_data": str(ours),
                **message,
            },
        )
    except httpx.HTTPError as exc:
        return network_failure(exc)
    try:
        code = response.json().get("error", {}).get("code")
    except (ValueError, AttributeError):
        code = None
    return outcome_of(
        response,
        lambda answer: answer["messages"][0]["id"],
        throttled=code in _THROTTLED,
        detail=f" (Graph code {code})" if code is not None else "",
    )


def graph_client(api_base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=api_base.rstrip("/") + "/", timeout=GRAPH_TIMEOUT)
