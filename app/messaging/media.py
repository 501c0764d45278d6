"""A voice note's audio, fetched the provider's way into memory and checked before anyone
listens: at most MAX_MEDIA_BYTES (streamed, so a larger file is cut off, never buffered
whole) and MAX_VOICE_SECONDS by its container. Never written to disk or database.

Meta: the media id gives a short-lived URL (``GET /<version>/<media id>``), fetched with the
access token, which goes only to Graph's own hosts (or the configured API base, a fake on a
developer's machine). Evolution: the instance's ``getBase64FromMediaMessage`` endpoint.
A provider's 5xx or a network failure is ``Unavailable`` (the turn is retried); any other
refusal is ``MediaRefused``, answered by asking the guest to write.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import mutagen
import orjson

from app.errors import Unavailable

log = logging.getLogger("app.messaging")

MAX_MEDIA_BYTES = 16 * 1024 * 1024
MAX_VOICE_SECONDS = 180
# Where Meta serves media: the Graph API and its CDN. Nothing else sees the token.
GRAPH_HOSTS = frozenset({"graph.facebook.com", "lookaside.fbsbx.com"})
# base64 of MAX_MEDIA_BYTES, and the JSON around it.
_MAX_BASE64_ANSWER = MAX_MEDIA_BYTES * 4 // 3 + 64 * 1024


@dataclass(frozen=True)
class Audio:
    data: bytes = b""
    mime_type: str = ""
    seconds: float = 0.0

    def __repr__(self) -> str:  # never the bytes, in a log or a traceback
        return f"Audio({len(self.data)} bytes, {self.mime_type}, {self.seconds:.1f} s)"


class MediaRefused(Exception):
    """The note cannot be listened to: too_large, too_long, unreadable, unavailable (the
    provider has no such media) or foreign_host (a URL the token must not go to)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def meta_audio(
    client: httpx.AsyncClient, api_base: str, token: str, media_id: str, mime_type: str
) -> Audio:
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {token}"}
    try:
        try:
            answer = await client.get(f"{api_base.rstrip('/')}/{media_id}", headers=headers)
        except httpx.HTTPError as exc:
            raise Unavailable(f"media lookup: {type(exc).__name__}") from None
        try:
            found = _checked(answer).json()
        except ValueError:
            raise MediaRefused("unavailable") from None
        url = found.get("url") if isinstance(found, dict) else None
        if not isinstance(url, str):
            raise MediaRefused("unavailable")
        if not _graph_host(url, api_base):
            raise MediaRefused("foreign_host")
        if int(found.get("file_size") or 0) > MAX_MEDIA_BYTES:
            raise MediaRefused("too_large")
        data = await _capped(client, url, headers, MAX_MEDIA_BYTES)
        audio = _audio(data, str(found.get("mime_type") or mime_type))
    except MediaRefused as refused:
        _logged("meta", refused.reason, started)
        raise
    _logged("meta", "ok", started, audio)
    return audio


async def evolution_audio(
    client: httpx.AsyncClient,
    api_base: str,
    instance: str,
    api_key: str,
    message_id: str,
    mime_type: str,
) -> Audio:
    started = time.monotonic()
    url = f"{api_base.rstrip('/')}/chat/getBase64FromMediaMessage/{instance}"
    body = {"message": {"key": {"id": message_id}}, "convertToMp4": False}
    try:
        raw = await _capped(client, url, {"apikey": api_key}, _MAX_BASE64_ANSWER, json=body)
        try:
            found: Any = orjson.loads(raw)
            data = base64.b64decode(found["base64"], validate=True)
        except (orjson.JSONDecodeError, KeyError, TypeError, binascii.Error):
            raise MediaRefused("unreadable") from None
        if len(data) > MAX_MEDIA_BYTES:
            raise MediaRefused("too_large")
        audio = _audio(data, str(found.get("mimetype") or mime_type))
    except MediaRefused as refused:
        _logged("evolution", refused.reason, started)
        raise
    _logged("evolution", "ok", started, audio)
    return audio


def _graph_host(url: str, api_base: str) -> bool:
    parts, base = urlsplit(url), urlsplit(api_base)
    if parts.scheme == "https" and parts.hostname in GRAPH_HOSTS:
        return True
    return (parts.scheme, parts.netloc) == (base.scheme, base.netloc)  # the configured API


async def _capped(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    limit: int,
    json: dict[str, Any] | None = None,
) -> bytes:
    """The answer's body, read in chunks and abandoned past ``limit`` bytes."""
    method = "GET" if json is None else "POST"
    try:
        async with client.stream(method, url, headers=headers, json=json) as response:
            _checked(response)
            if int(response.headers.get("content-length") or 0) > limit:
                raise MediaRefused("too_large")
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise MediaRefused("too_large")
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise Unavailable(f"media download: {type(exc).__name__}") from None
    return b"".join(chunks)


def _checked(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 500 or response.status_code == 429:
        raise Unavailable(f"media download: HTTP {response.status_code}")
    if not response.is_success:
        raise MediaRefused("unavailable")
    return response


def _audio(data: bytes, mime_type: str) -> Audio:
    """The note with its duration from the container; refused when it has none or too long."""
    try:
        info = mutagen.File(io.BytesIO(data))
    except mutagen.MutagenError:
        info = None
    seconds = getattr(getattr(info, "info", None), "length", None)
    if not isinstance(seconds, (int, float)) or seconds <= 0:
        raise MediaRefused("unreadable")
    if seconds > MAX_VOICE_SECONDS:
        raise MediaRefused("too_long")
    return Audio(data, mime_type.split(";")[0].strip() or "audio/ogg", float(seconds))


def _logged(provider: str, outcome: str, started: float, audio: Audio | None = None) -> None:
    log.info(
        "media_download",
        extra={
            "provider": provider,
            "outcome": outcome,
            "bytes": len(audio.data) if audio else None,
            "seconds": round(audio.seconds, 1) if audio else None,
            "latency_ms": round((time.monotonic() - started) * 1000),
        },
    )
