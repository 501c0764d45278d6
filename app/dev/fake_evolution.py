"""A local stand-in for an Evolution API gateway, and the gateway's side of a webhook event.

``POST /message/sendText/<instance>`` with the instance's ``apikey`` header and
``{"number", "text"}`` answers as Evolution does (201, ``{"key": {"id", "remoteJid",
"fromMe": true}, …}``) and records the message with the address it was given (a phone
number's digits, or a full ``…@lid`` JID); ``fail_with`` queues statuses for the next sends;
``answer_delay`` (``POST /_dev/delay``) makes it take a message at once but answer later;
``GET /_dev/messages`` lists what was sent. ``POST /chat/getBase64FromMediaMessage/<instance>``
serves the media ``add_media`` registered for a message id, as the instance does (``{"base64",
"mimetype", "mediaType", "fileName"}``). Unlike Meta, an Evolution instance reports
nothing that could prove a send whose answer was lost. It never logs what it receives.
``upsert_event`` and ``upsert_audio_event`` build what an instance posts to our webhook for a
guest's message and voice note.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.dev.servers import run_until_signalled, start_in_loop
from app.logging import configure_logging


@dataclass
class FakeEvolution:
    port: int
    instance: str
    api_key: str
    bind: str = "127.0.0.1"
    sent: list[dict[str, Any]] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    answer_delay: float = 0.0
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    _stop: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_with(self, *statuses: int) -> None:
        self.failures.extend(statuses)

    def add_media(self, message_id: str, data: bytes, mime_type: str) -> None:
        self.media[message_id] = (data, mime_type)

    async def start(self) -> None:
        app = Starlette(
            routes=[
                Route("/message/sendText/{instance}", self._send, methods=["POST"]),
                Route("/chat/getBase64FromMediaMessage/{instance}", self._media, methods=["POST"]),
                Route("/_dev/messages", self._list, methods=["GET"]),
                Route("/_dev/delay", self._delay, methods=["POST"]),
            ]
        )
        self._stop = await start_in_loop(app, self.port, self.bind)

    async def stop(self) -> None:
        if self._stop is not None:
            await self._stop()

    async def _send(self, request: Request) -> JSONResponse:
        if request.path_params["instance"] != self.instance:
            return JSONResponse({"status": 404, "error": "Not Found"}, status_code=404)
        if request.headers.get("apikey") != self.api_key:
            return JSONResponse({"status": 401, "error": "Unauthorized"}, status_code=401)
        if self.failures:
            status = self.failures.pop(0)
            return JSONResponse({"status": status, "error": "Error"}, status_code=status)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) for k in ("number", "text")
        ):
            return JSONResponse({"status": 400, "error": "Bad Request"}, status_code=400)
        message_id = uuid.uuid4().hex[:20].upper()
        self.sent.append({"id": message_id, "to": body["number"], "text": body["text"]})
        number = body["number"]
        jid = number if "@" in number else f"{number}@s.whatsapp.net"
        if self.answer_delay:  # taken: it goes out whatever happens to this answer
            await asyncio.sleep(self.answer_delay)
        return JSONResponse(
            {
                "key": {"remoteJid": jid, "fromMe": True, "id": message_id},
                "message": {"extendedTextMessage": {"text": body["text"]}},
                "messageTimestamp": str(int(time.time())),
                "status": "PENDING",
            },
            status_code=201,
        )

    async def _media(self, request: Request) -> JSONResponse:
        if request.path_params["instance"] != self.instance:
            return JSONResponse({"status": 404, "error": "Not Found"}, status_code=404)
        if request.headers.get("apikey") != self.api_key:
            return JSONResponse({"status": 401, "error": "Unauthorized"}, status_code=401)
        try:
            message_id = orjson.loads(await request.body())["message"]["key"]["id"]
            data, mime_type = self.media[message_id]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return JSONResponse({"status": 400, "error": "Bad Request"}, status_code=400)
        return JSONResponse(
            {
                "mediaType": "audioMessage",
                "fileName": f"{message_id}.oga",
                "size": {"fileLength": len(data)},
                "mimetype": mime_type,
                "base64": base64.b64encode(data).decode(),
                "buffer": None,
            }
        )

    async def _list(self, request: Request) -> JSONResponse:
        return JSONResponse({"messages": self.sent})

    async def _delay(self, request: Request) -> JSONResponse:
        self.answer_delay = float(orjson.loads(await request.body()).get("seconds", 0))
        return JSONResponse({"answer_delay": self.answer_delay})


def upsert_event(
    instance: str, sender: str, text: str, *, message_id: str | None = None, from_me: bool = False
) -> dict[str, Any]:
    """A ``messages.upsert`` event as an instance posts it (``sender``: digits)."""
    return {
        "event": "messages.upsert",
        "instance": instance,
        "data": {
            "key": {
                "remoteJid": f"{sender}@s.whatsapp.net",
                "fromMe": from_me,
                "id": message_id or uuid.uuid4().hex[:20].upper(),
            },
            "pushName": "Hóspede",
            "message": {"conversation": text},
            "messageType": "conversation",
            "messageTimestamp": int(time.time()),
        },
        "destination": "http://127.0.0.1/webhooks/whatsapp/evolution",
        "date_time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "sender": "5548000000000@s.whatsapp.net",
        "server_url": "http://127.0.0.1",
    }


def upsert_audio_event(
    instance: str, sender: str, *, message_id: str | None = None, seconds: int = 5
) -> dict[str, Any]:
    """A guest's voice note (push-to-talk) as an instance posts it, without the media."""
    event = upsert_event(instance, sender, "", message_id=message_id)
    event["data"]["messageType"] = "audioMessage"
    event["data"]["message"] = {
        "audioMessage": {
            "url": "https://mmg.whatsapp.net/v/t62.7117-24/voice.enc",
            "mimetype": "audio/ogg; codecs=opus",
            "fileLength": "8123",
            "seconds": seconds,
            "ptt": True,
            "mediaKey": "bWVkaWEta2V5",
        }
    }
    return event


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local fake Evolution API for make run")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12113)
    parser.add_argument("--instance", required=True)
    parser.add_argument("--api-key", required=True)
    args = parser.parse_args(argv)
    configure_logging("fake-evolution")
    fake = FakeEvolution(args.port, args.instance, args.api_key, bind=args.host)
    asyncio.run(run_until_signalled(fake.start, fake.stop))


if __name__ == "__main__":
    main()
