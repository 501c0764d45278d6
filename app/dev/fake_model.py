"""A local stand-in for Gemini on Vertex AI, for the real google-genai SDK to talk to.

``POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent``
answers in Vertex's wire format (``candidates[].content.parts[].text``, ``finishReason``,
``usageMetadata``, ``modelVersion``) what a test registered:

- ``reply_reading(contains, reading)``: a request whose text contains ``contains`` gets
  ``reading`` as the model's JSON;
- ``reply_transcript(audio, text)``: a request carrying ``audio`` inline gets ``text``.

Anything else gets ``{}`` (a reading with nothing in it) or an empty transcript.
``delay`` makes every answer late, ``fail_with`` queues error statuses (Google's error
shape) for the next requests, ``requests`` keeps every body received. It never logs them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.dev.servers import run_until_signalled, start_in_loop
from app.logging import configure_logging

DEFAULT_PORT = 12115
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


@dataclass
class FakeModel:
    port: int = DEFAULT_PORT
    bind: str = "127.0.0.1"
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    readings: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    transcripts: dict[bytes, str] = field(default_factory=dict)
    failures: list[int] = field(default_factory=list)
    _stop: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reply_reading(self, contains: str, reading: dict[str, Any]) -> None:
        self.readings.append((contains, reading))

    def reply_transcript(self, audio: bytes, text: str) -> None:
        self.transcripts[audio] = text

    def fail_with(self, *statuses: int) -> None:
        self.failures.extend(statuses)

    async def start(self) -> None:
        path = "/v1/projects/{project}/locations/{location}/publishers/google/models/{call}"
        app = Starlette(routes=[Route(path, self._generate, methods=["POST"])])
        self._stop = await start_in_loop(app, self.port, self.bind)

    async def stop(self) -> None:
        if self._stop is not None:
            await self._stop()

    async def _generate(self, request: Request) -> JSONResponse:
        model, _, method = request.path_params["call"].partition(":")
        if method != "generateContent":
            return _error(404, f"method {method or '(none)'} not found")
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return _error(401, "request had no credentials")
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _error(400, "invalid JSON payload")
        self.requests.append(body)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failures:
            status = self.failures.pop(0)
            return _error(status, "the fake model was told to fail")
        parts = [p for c in body.get("contents", []) for p in c.get("parts", [])]
        audio = [_bytes(p["inlineData"]["data"]) for p in parts if "inlineData" in p]
        text = " ".join(p.get("text", "") for p in parts)
        if audio:
            answer = self.transcripts.get(audio[0], "")
        else:
            found = [reading for contains, reading in self.readings if contains in text]
            answer = orjson.dumps(found[-1] if found else {}).decode()
        return JSONResponse(
            {
                "candidates": [
                    {
                        "content": {"role": "model", "parts": [{"text": answer}]},
                        "finishReason": "STOP",
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": max(1, len(text) // 4),
                    "candidatesTokenCount": max(1, len(answer) // 4),
                    "totalTokenCount": max(1, len(text) // 4) + max(1, len(answer) // 4),
                },
                "modelVersion": f"{model}-fake",
            }
        )


def _bytes(data: str) -> bytes:
    """Inline data as the SDK sends it: base64, URL-safe or not, padded or not."""
    urlsafe = data.replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(urlsafe + "=" * (-len(data) % 4))


def _error(status: int, message: str) -> JSONResponse:
    shape = {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}
    return JSONResponse({"error": shape}, status_code=status)


def main() -> None:
    parser = argparse.ArgumentParser(description="a fake Gemini on Vertex AI")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args()
    configure_logging("fake-model")
    fake = FakeModel(args.port)
    asyncio.run(run_until_signalled(fake.start, fake.stop))


if __name__ == "__main__":
    main()
