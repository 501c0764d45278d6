"""A local stand-in for Meta's WhatsApp Graph API, and the Meta side of a webhook delivery.

``POST /<version>/<phone number id>/messages`` with ``Authorization: Bearer <token>``
(a text, a template with body parameters, or an interactive list or reply buttons within
Graph's limits) answers as Graph does
(``{"messaging_product": "whatsapp", "contacts": [...], "messages": [{"id": "wamid.…"}]}``)
and records the message. Errors are Graph-shaped
(``{"error": {"message", "type", "code", "fbtrace_id"}}``). Like Meta, once it accepted a
message it posts signed ``sent`` and ``delivered`` statuses to the webhook (when it has one:
``webhook_url`` and ``app_secret``), carrying the message's ``biz_opaque_callback_data``.
Controls for tests and dev: ``fail_with`` queues statuses for the next sends (429, 500,
400, …); ``answer_delay`` (``POST /_dev/delay``) makes it accept a message at once but
answer only that much later, and ``hold()``/``release()`` hold every answer until released
— the window in which a worker can die after Graph took its message; ``GET /_dev/messages``
lists what was sent. Media: ``add_media`` registers audio and returns its media id;
``GET /<version>/<media id>`` answers its URL as Graph does (``{"url", "mime_type",
"sha256", "file_size", "id"}``), by default ``/_media/<id>`` on this server, which serves the
bytes to the access token; ``media_requests`` records each media request's path and whether
it carried the token. It never logs what it receives: the recipient's number and the text
are a guest's.

``inbound_envelope``, ``audio_envelope`` and ``signature`` build what Meta posts to our webhook.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.dev.servers import run_until_signalled, start_in_loop
from app.logging import configure_logging

_ERRORS = {
    400: (100, "Invalid parameter"),
    401: (190, "Invalid OAuth access token"),
    429: (130429, "Rate limit hit"),
    500: (1, "An unknown error occurred"),
    503: (2, "Service temporarily unavailable"),
}


def _error(status: int) -> JSONResponse:
    code, message = _ERRORS.get(status, (1, "Error"))
    return JSONResponse(
        {
            "error": {
                "message": message,
                "type": "OAuthException",
                "code": code,
                "fbtrace_id": uuid.uuid4().hex[:16],
            }
        },
        status_code=status,
    )


@dataclass
class FakeGraph:
    port: int
    access_token: str
    bind: str = "127.0.0.1"
    sent: list[dict[str, Any]] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)  # statuses for the next sends
    # Where Meta posts status webhooks, and the app secret that signs them (None: no posts).
    webhook_url: str | None = None
    app_secret: str | None = None
    answer_delay: float = 0.0
    # media id → (bytes, MIME type, the URL Graph gives for it; None: this server's)
    media: dict[str, tuple[bytes, str, str | None]] = field(default_factory=dict)
    media_requests: list[tuple[str, bool]] = field(default_factory=list)
    _stop: Any = None
    _held: asyncio.Event = field(default_factory=asyncio.Event)
    _posting: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._held.set()  # answers flow until hold()
        self._http: httpx.AsyncClient | None = None

    def hold(self) -> None:
        """Accept messages but answer none until ``release()``."""
        self._held.clear()

    def release(self) -> None:
        self._held.set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v21.0"

    def fail_with(self, *statuses: int) -> None:
        self.failures.extend(statuses)

    def add_media(self, data: bytes, mime_type: str, url: str | None = None) -> str:
        media_id = str(uuid.uuid4().int)[:16]
        self.media[media_id] = (data, mime_type, url)
        return media_id

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/{version}/{phone_number_id}/messages", self._send, methods=["POST"]),
                Route("/_dev/messages", self._list, methods=["GET"]),
                Route("/_dev/fail", self._fail, methods=["POST"]),
                Route("/_dev/delay", self._delay, methods=["POST"]),
                Route("/_media/{media_id}", self._media_bytes, methods=["GET"]),
                Route("/{version}/{media_id}", self._media_url, methods=["GET"]),
            ]
        )

    async def start(self) -> None:
        # No idle connections kept to the public role, which may stop first.
        self._http = httpx.AsyncClient(timeout=5, limits=httpx.Limits(max_keepalive_connections=0))
        self._stop = await start_in_loop(self.app(), self.port, self.bind)

    async def stop(self) -> None:
        for posting in list(self._posting):
            posting.cancel()
        await asyncio.gather(*self._posting, return_exceptions=True)
        if self._stop is not None:
            await self._stop()
        if self._http is not None:
            await self._http.aclose()

    async def _send(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            return _error(401)
        if self.failures:
            return _error(self.failures.pop(0))
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _error(400)
        if (
            not isinstance(body, dict)
            or body.get("messaging_product") != "whatsapp"
            or not isinstance(body.get("to"), str)
        ):
            return _error(400)
        kind = body.get("type")
        sent = (
            _text(body)
            if kind == "text"
            else _interactive(body)
            if kind == "interactive"
            else _template(body)
        )
        if sent is None:
            return _error(400)
        wamid = f"wamid.{uuid.uuid4().hex}"
        callback = body.get("biz_opaque_callback_data")
        number_id = request.path_params["phone_number_id"]
        self.sent.append(
            {
                "id": wamid,
                "phone_number_id": number_id,
                "to": body["to"],
                "callback": callback,
                **sent,
            }
        )
        if self.webhook_url and self.app_secret:
            posting = asyncio.create_task(
                self._post_statuses(number_id, wamid, body["to"], callback)
            )
            self._posting.add(posting)
            posting.add_done_callback(self._posting.discard)
        # Taken: from here on the message goes out whatever happens to this answer.
        if self.answer_delay:
            await asyncio.sleep(self.answer_delay)
        await self._held.wait()
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": wamid}],
            }
        )

    def _authorized(self, request: Request) -> bool:
        bearer = request.headers.get("authorization") == f"Bearer {self.access_token}"
        self.media_requests.append((request.url.path, bearer))
        return bearer

    async def _media_url(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return _error(401)
        media_id = request.path_params["media_id"]
        if media_id not in self.media:
            return _error(400)  # Graph: "Unsupported get request"
        data, mime_type, url = self.media[media_id]
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "url": url or f"http://127.0.0.1:{self.port}/_media/{media_id}",
                "mime_type": mime_type,
                "sha256": hashlib.sha256(data).hexdigest(),
                "file_size": str(len(data)),
                "id": media_id,
            }
        )

    async def _media_bytes(self, request: Request) -> Response:
        if not self._authorized(request):
            return _error(401)
        found = self.media.get(request.path_params["media_id"])
        if found is None:
            return _error(400)
        return Response(found[0], media_type=found[1])

    async def _list(self, request: Request) -> JSONResponse:
        return JSONResponse({"messages": self.sent})

    async def _delay(self, request: Request) -> JSONResponse:
        self.answer_delay = float(orjson.loads(await request.body()).get("seconds", 0))
        return JSONResponse({"answer_delay": self.answer_delay})

    async def _post_statuses(self, number_id: str, wamid: str, to: str, callback: object) -> None:
        """``sent`` then ``delivered``, each retried until the webhook answers 2xx (as Meta
        retries), a moment after the message was taken."""
        assert self._http is not None and self.webhook_url and self.app_secret
        for status in ("sent", "delivered"):
            await asyncio.sleep(0.05)
            body = orjson.dumps(status_envelope(number_id, wamid, to, status, callback))
            headers = {
                "Content-Type": "application/json",
                "X-Hub-Signature-256": signature(body, self.app_secret),
            }
            for attempt in range(50):
                try:
                    answer = await self._http.post(self.webhook_url, content=body, headers=headers)
                    if answer.is_success:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(min(0.1 * 2**attempt, 2.0))

    async def _fail(self, request: Request) -> JSONResponse:
        statuses = orjson.loads(await request.body()).get("statuses", [])
        self.fail_with(*(int(s) for s in statuses))
        return JSONResponse({"pending_failures": self.failures})


def _text(body: dict[str, Any]) -> dict[str, Any] | None:
    text = body.get("text")
    if not isinstance(text, dict) or not isinstance(text.get("body"), str):
        return None
    return {"text": text["body"]}


def _interactive(body: dict[str, Any]) -> dict[str, Any] | None:
    """A list or reply buttons, held to Graph's limits (a body of 1,024 characters; 10
    rows, row titles 24 and descriptions 72, row ids 200; 3 buttons, titles 20, ids 256,
    each id unique): recorded with its body as the text and the ids a tap may send back."""
    message: Any = body.get("interactive")
    try:
        text = message["body"]["text"]
        action = message["action"]
        if message["type"] == "list":
            rows = [row for section in action["sections"] for row in section["rows"]]
            choices = [(r["id"], r["title"]) for r in rows]
            fits = (
                len(action["button"]) <= 20
                and 1 <= len(rows) <= 10
                and all(len(r["title"]) <= 24 and len(r["id"]) <= 200 for r in rows)
                and all(len(r.get("description", "")) <= 72 for r in rows)
            )
        elif message["type"] == "button":
            choices = [(b["reply"]["id"], b["reply"]["title"]) for b in action["buttons"]]
            fits = 1 <= len(choices) <= 3 and all(
                len(title) <= 20 and len(id_) <= 256 for id_, title in choices
            )
        else:
            return None
    except (KeyError, TypeError):
        return None
    unique = len({id_ for id_, _ in choices}) == len(choices)
    if not (isinstance(text, str) and 0 < len(text) <= 1024 and fits and unique):
        return None
    return {"text": text, "interactive": message["type"], "choices": choices}


def _template(body: dict[str, Any]) -> dict[str, Any] | None:
    """A template message: recorded with its name, language and body parameters (whose
    values, joined, stand for the text the guest would read)."""
    template = body.get("template")
    if body.get("type") != "template" or not isinstance(template, dict):
        return None
    try:
        language = template["language"]["code"]
        parameters = [p["text"] for c in template["components"] for p in c["parameters"]]
    except (KeyError, TypeError):
        return None
    return {
        "template": template.get("name"),
        "language": language,
        "parameters": parameters,
        "text": "\n".join(parameters),
    }


def inbound_envelope(
    phone_number_id: str,
    sender: str,
    text: str,
    *,
    message_id: str | None = None,
    name: str = "Hóspede",
) -> dict[str, Any]:
    """A text message as Meta posts it to the webhook (``sender``: digits, no "+")."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "100000000000009",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "5548000000000",
                                "phone_number_id": phone_number_id,
                            },
                            "contacts": [{"profile": {"name": name}, "wa_id": sender}],
                            "messages": [
                                {
                                    "from": sender,
                                    "id": message_id or f"wamid.HBgN{uuid.uuid4().hex.upper()}==",
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def audio_envelope(
    phone_number_id: str,
    sender: str,
    media_id: str,
    *,
    message_id: str | None = None,
    mime_type: str = "audio/ogg; codecs=opus",
) -> dict[str, Any]:
    """A voice note as Meta posts it: the media's id, never its bytes."""
    envelope = inbound_envelope(phone_number_id, sender, "", message_id=message_id)
    (message,) = envelope["entry"][0]["changes"][0]["value"]["messages"]
    del message["text"]
    message["type"] = "audio"
    message["audio"] = {
        "mime_type": mime_type,
        "sha256": "n3PWs0KPNwHn7c0uZzjIgPn8wP4VsZzj3wbiJuB1uG8=",
        "id": media_id,
        "voice": True,
    }
    return envelope


def tap_envelope(
    phone_number_id: str,
    sender: str,
    reply_id: str,
    title: str,
    *,
    kind: str = "list_reply",
    message_id: str | None = None,
) -> dict[str, Any]:
    """A tapped list row (``list_reply``) or reply button (``button_reply``) as Meta posts it."""
    envelope = inbound_envelope(phone_number_id, sender, "", message_id=message_id)
    (message,) = envelope["entry"][0]["changes"][0]["value"]["messages"]
    del message["text"]
    message["type"] = "interactive"
    message["context"] = {"from": "5548000000000", "id": f"wamid.{uuid.uuid4().hex}"}
    message["interactive"] = {"type": kind, kind: {"id": reply_id, "title": title}}
    return envelope


def status_envelope(
    phone_number_id: str, wamid: str, recipient: str, status: str, callback: object = None
) -> dict[str, Any]:
    """A status webhook for one of our messages, as Meta posts it."""
    entry: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": recipient,
    }
    if isinstance(callback, str):
        entry["biz_opaque_callback_data"] = callback
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "5548000000000", "phone_number_id": phone_number_id},
        "statuses": [entry],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "100000000000009", "changes": [{"field": "messages", "value": value}]}],
    }


def signature(body: bytes, app_secret: str) -> str:
    """The X-Hub-Signature-256 header Meta sends with ``body``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local fake WhatsApp Graph API for make run")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12112)
    parser.add_argument("--access-token", required=True)
    parser.add_argument("--webhook-url", help="where to post status webhooks, as Meta does")
    parser.add_argument("--app-secret", help="the Meta app secret that signs them")
    args = parser.parse_args(argv)
    configure_logging("fake-graph")
    fake = FakeGraph(
        port=args.port,
        access_token=args.access_token,
        bind=args.host,
        webhook_url=args.webhook_url,
        app_secret=args.app_secret,
    )
    asyncio.run(run_until_signalled(fake.start, fake.stop))


if __name__ == "__main__":
    main()
