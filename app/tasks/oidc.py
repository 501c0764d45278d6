"""Worker authentication: every /tasks/* request carries a Google-signed OIDC token.

Checks, in order: a Bearer token is present and well formed; its signature verifies
against Google's certificates (fetched asynchronously, cached per Cache-Control,
refetched when an unknown key id appears); ``aud`` is the worker's audience; ``iss``
is Google's; ``exp``/``iat`` hold; ``email_verified``; and ``email`` is one of the
allowed service accounts. There is no switch to turn this off: locally the tasks
emulator signs real tokens with its own key and serves its certificates.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import orjson
from google.auth import exceptions as gauth_exceptions
from google.auth import jwt
from starlette.requests import Request
from starlette.responses import Response

from app.errors import Forbidden, Unauthorized, Unavailable
from app.logging import annotate_request
from app.tasks.outbox import relaying

ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
# Tolerated clock difference between Google and us.
CLOCK_SKEW_SECONDS = 30
# Without Cache-Control, refetch hourly; never refetch for an unknown kid more often
# than this, so garbage tokens cannot make us hammer the certs endpoint.
DEFAULT_CERTS_TTL = 3600.0
UNKNOWN_KID_REFETCH_SECONDS = 30.0
_MAX_AGE = re.compile(r"max-age=(\d+)")


@dataclass
class OidcVerifier:
    certs_url: str
    audience: str
    allowed_emails: frozenset[str]
    _certs: dict[str, str] = field(default_factory=dict)
    _expires: float = 0.0
    _last_fetch: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=5.0))

    async def _fetch(self) -> None:
        self._last_fetch = time.monotonic()
        try:
            response = await self._http.get(self.certs_url)
            response.raise_for_status()
            certs = response.json()
        except (httpx.HTTPError, ValueError):
            raise Unavailable("cannot fetch OIDC certificates") from None
        match = _MAX_AGE.search(response.headers.get("cache-control", ""))
        ttl = float(match.group(1)) if match else DEFAULT_CERTS_TTL
        self._certs = {str(k): str(v) for k, v in certs.items()}
        self._expires = time.monotonic() + ttl

    async def certs_for(self, kid: str) -> dict[str, str]:
        async with self._lock:
            now = time.monotonic()
            stale = now >= self._expires
            unknown = (
                kid not in self._certs and now - self._last_fetch > UNKNOWN_KID_REFETCH_SECONDS
            )
            if stale or unknown:
                await self._fetch()
        return self._certs

    async def verify(self, authorization: str | None) -> str:
        """The verified service-account e-mail, or Unauthorized/Forbidden."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("missing bearer token")
        kid = _key_id(token)
        certs = await self.certs_for(kid)
        if kid not in certs:
            raise Unauthorized("unknown signing key")
        try:
            claims = jwt.decode(
                token,
                certs={kid: certs[kid]},
                audience=self.audience,
                clock_skew_in_seconds=CLOCK_SKEW_SECONDS,
            )
        except (ValueError, TypeError, gauth_exceptions.GoogleAuthError):
            raise Unauthorized("invalid token") from None
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or issuer not in ISSUERS:
            raise Unauthorized("wrong issuer")
        if claims.get("email_verified") is not True:
            raise Unauthorized("e-mail not verified")
        email = claims.get("email")
        if not isinstance(email, str):
            raise Unauthorized("no e-mail claim")
        if email not in self.allowed_emails:
            raise Forbidden("service account not allowed")
        return str(email)

    async def close(self) -> None:
        await self._http.aclose()


def _key_id(token: str) -> str:
    try:
        header = token.split(".", 1)[0]
        decoded = orjson.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
        kid = decoded["kid"]
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise Unauthorized("malformed token") from None
    if not isinstance(kid, str):
        raise Unauthorized("malformed token")
    return kid


Endpoint = Callable[[Request], Awaitable[Response]]


def task_endpoint(handler: Endpoint) -> Endpoint:
    """Wrap a /tasks/* handler: authenticate first, record the task's name, run it, then
    relay the outbox rows it wrote (the one place the relay follows a handler)."""

    async def authenticated(request: Request) -> Response:
        deps = request.state.deps
        verifier: OidcVerifier = deps.oidc
        await verifier.verify(request.headers.get("authorization"))
        task = request.headers.get("x-cloudtasks-taskname")
        if task:
            annotate_request(
                task_name=task, retry=request.headers.get("x-cloudtasks-taskretrycount")
            )
        async with relaying(deps.pool, deps.queue):
            return await handler(request)

    authenticated.__name__ = handler.__name__
    return authenticated
