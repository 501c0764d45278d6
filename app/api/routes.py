"""The inn's JSON API on the public role: ``/api/v1/``.

- ``Authorization: Bearer hk_…``: a key of one property (404 for another's ids), ``read``
  or ``write``; a revoked or unknown key is a 401. Each key has a rate limit per minute,
  counted in the database (429 with ``Retry-After``).
- Reads are SQL on the public pool. A change is recorded as a command for the worker (as
  the console's are) and answered 202 with its URL; ``GET /api/v1/commands/{id}`` gives
  its status and result.
- Every POST needs ``Idempotency-Key``: the first answer under a key (scoped to the
  property, kept 30 days) is replayed for the same body; another body is a 409.
- Errors are RFC 9457 ``application/problem+json``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api import keys
from app.api.openapi import DOCUMENT
from app.console import commands
from app.db import QUERIES
from app.errors import (
    AppError,
    BadRequest,
    Conflict,
    Forbidden,
    IdempotencyConflict,
    NotFound,
    Unauthorized,
)
from app.http.body import read_capped
from app.http.deps import Deps, deps
from app.inventory.properties import Property
from app.logging import annotate_request

MAX_BODY = 16 * 1024
MAX_RANGE_DAYS = 366
PROBLEM = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    429: "Too many requests",
}

Handler = Callable[[Request, keys.Key], Awaitable[Response]]


class TooManyRequests(AppError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def problem_body(exc: AppError) -> dict[str, Any]:
    return {
        "type": f"https://hotelly.app/problems/{exc.code}",
        "title": TITLES.get(exc.status, "Error"),
        "status": exc.status,
        "detail": str(exc),
    }


def problem(exc: AppError) -> Response:
    """A refusal as RFC 9457 problem details (429s say when to come back)."""
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
    return Response(orjson.dumps(problem_body(exc)), exc.status, headers, media_type=PROBLEM)


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value, default=str), status, media_type="application/json")


async def _key(request: Request, scope: str) -> keys.Key:
    d = deps(request)
    if d.settings.api_key_pepper is None:
        raise NotFound("the API is not configured (API_KEY_PEPPER)")
    async with d.pool.acquire() as conn:
        key = await keys.used(
            conn, d.settings.api_key_pepper.reveal(), request.headers.get("authorization")
        )
    if key is None:
        raise Unauthorized("a live API key is required: Authorization: Bearer hk_…")
    annotate_request(api_key=key.id)
    if key.count > d.settings.api_rate_per_minute:
        raise TooManyRequests(
            f"at most {d.settings.api_rate_per_minute} requests a minute", max(key.retry_after, 1)
        )
    if scope == "write" and key.scope != "write":
        raise Forbidden("this key may only read")
    return key


def endpoint(scope: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Authenticate with a key of ``scope``, then run; a refusal is a problem document."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                return await handler(request, await _key(request, scope))
            except AppError as exc:
                if exc.status >= 500:
                    raise
                return problem(exc)

        run.__name__ = handler.__name__
        return run

    return wrap


async def _property(d: Deps, key: keys.Key) -> Property:
    async with d.pool.acquire() as conn:
        row = await conn.fetchrow(QUERIES["property_of_id"], key.property_id)
    return Property(**dict(row))


def _date(request: Request, name: str, required: bool = False) -> dt.date | None:
    raw = request.query_params.get(name)
    if raw is None:
        if required:
            raise BadRequest(f"{name} is required (YYYY-MM-DD)")
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a date (YYYY-MM-DD)") from None


# ---- reads ------------------------------------------------------------------------------


async def openapi(request: Request) -> Response:
    return _json(DOCUMENT)


@endpoint("read")
async def get_property(request: Request, key: keys.Key) -> Response:
    prop = await _property(deps(request), key)
    return _json(
        {"code": prop.code, "name": prop.name, "timezone": prop.timezone, "currency": prop.currency}
    )


async def _listed(request: Request, query: str, *args: Any) -> Response:
    """A list read as ``{"data": [rows]}``."""
    async with deps(request).pool.acquire() as conn:
        rows = await conn.fetch(QUERIES[query], *args)
    return _json({"data": [dict(r) for r in rows]})


def _path_id(request: Request, what: str) -> uuid.UUID:
    """The path's id; one that is no UUID names nothing (404)."""
    try:
        return uuid.UUID(request.path_params["id"])
    except ValueError:
        raise NotFound(f"no such {what}") from None


@endpoint("read")
async def room_types(request: Request, key: keys.Key) -> Response:
    return await _listed(request, "api_room_types", key.property_id)


@endpoint("read")
async def ari(request: Request, key: keys.Key) -> Response:
    start, end = _date(request, "from", True), _date(request, "to", True)
    assert start is not None and end is not None
    if not 0 < (end - start).days <= MAX_RANGE_DAYS:
        raise BadRequest(f"to must be after from, at most {MAX_RANGE_DAYS} days")
    room = request.query_params.get("room_type")
    return await _listed(request, "api_ari", key.property_id, start, end, room)


@endpoint("read")
async def holds(request: Request, key: keys.Key) -> Response:
    status = request.query_params.get("status", "active")
    if status not in ("active", "expired", "cancelled", "converted"):
        raise BadRequest("status must be active, expired, cancelled or converted")
    return await _listed(request, "api_holds", key.property_id, None, [status])


@endpoint("read")
async def hold(request: Request, key: keys.Key) -> Response:
    hold_id = _path_id(request, "hold")
    every = ["active", "expired", "cancelled", "converted"]
    async with deps(request).pool.acquire() as conn:
        rows = await conn.fetch(QUERIES["api_holds"], key.property_id, hold_id, every)
    if not rows:
        raise NotFound("no such hold")
    return _json(dict(rows[0]))


@endpoint("read")
async def reservations(request: Request, key: keys.Key) -> Response:
    q = request.query_params
    status = q.get("status")
    if status not in (None, "confirmed", "cancelled"):
        raise BadRequest("status must be confirmed or cancelled")
    try:
        limit = int(q.get("limit", "50"))
    except ValueError:
        raise BadRequest("limit must be a number") from None
    if not 1 <= limit <= 100:
        raise BadRequest("limit must be between 1 and 100")
    after_day, after_code = None, None
    if q.get("cursor"):
        raw_day, _, after_code = q["cursor"].partition("_")
        try:
            after_day = dt.date.fromisoformat(raw_day)
        except ValueError:
            raise BadRequest("cursor is not one this API gave") from None
    async with deps(request).pool.acquire() as conn:
        rows = await conn.fetch(
            QUERIES["api_reservations"],
            key.property_id,
            status,
            _date(request, "checkin_from"),
            _date(request, "checkin_to"),
            after_day,
            after_code,
            limit + 1,
        )
    page = [dict(r) for r in rows[:limit]]
    cursor = f"{page[-1]['checkin']}_{page[-1]['code']}" if len(rows) > limit else None
    return _json({"data": page, "next_cursor": cursor})


@endpoint("read")
async def reservation(request: Request, key: keys.Key) -> Response:
    async with deps(request).pool.acquire() as conn:
        row = await conn.fetchrow(
            QUERIES["api_reservation"], key.property_id, request.path_params["code"]
        )
    if row is None:
        raise NotFound("no such reservation")
    return _json(dict(row))


@endpoint("read")
async def calendars(request: Request, key: keys.Key) -> Response:
    return await _listed(request, "api_calendars", key.property_id)


@endpoint("read")
async def command(request: Request, key: keys.Key) -> Response:
    command_id = _path_id(request, "command")
    async with deps(request).pool.acquire() as conn:
        row = await conn.fetchrow(QUERIES["console_command"], command_id)
    if row is None or row["property_id"] != key.property_id:
        raise NotFound("no such command")
    return _json(_shown(row))


def _shown(row: Any) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "command": row["command"],
        "status": row["status"],
        "result": row["result"],
        "url": f"/api/v1/commands/{row['id']}",
    }


# ---- changes: recorded once per Idempotency-Key, run by the worker -----------------------


def _body(request: Request, raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise BadRequest("send application/json")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


async def _change(
    request: Request, key: keys.Key, name: str, form: Callable[[dict[str, Any]], dict[str, str]]
) -> Response:
    """Record the command the body asks for, once per Idempotency-Key: 202 and its URL."""
    d = deps(request)
    idem = request.headers.get("idempotency-key", "")
    if not 1 <= len(idem) <= 200:
        raise BadRequest("the Idempotency-Key header is required (at most 200 characters)")
    raw = await read_capped(request, MAX_BODY)
    scope = f"api:{key.property_id}"
    fingerprint = hashlib.sha256(
        f"{request.method} {request.url.path}\n".encode() + raw
    ).hexdigest()
    async with d.pool.acquire() as conn:
        claimed = await conn.fetchval(QUERIES["api_idempotency_claim"], scope, idem, fingerprint)
        if claimed is None:
            seen = await conn.fetchrow(QUERIES["api_idempotency_seen"], scope, idem)
            if seen["fingerprint"] != fingerprint:
                raise IdempotencyConflict("this Idempotency-Key was used for another request")
            if seen["response"] is None:
                raise Conflict("a request with this Idempotency-Key is in progress")
            first = seen["response"]
            return Response(
                orjson.dumps(first["body"]),
                first["status"],
                media_type=first["media_type"],
                headers={"Idempotent-Replayed": "true"},
            )
    try:
        answer = await _record(d, key, name, form(_body(request, raw)), idem)
    except AppError as exc:
        if exc.status >= 500:
            async with d.pool.acquire() as conn:
                await conn.execute(QUERIES["api_idempotency_release"], scope, idem)
            raise
        answer = (exc.status, PROBLEM, problem_body(exc))
    status, media_type, body = answer
    async with d.pool.acquire() as conn:
        stored = {"status": status, "media_type": media_type, "body": body}
        await conn.execute(QUERIES["api_idempotency_answer"], scope, idem, stored)
    return Response(orjson.dumps(body), status, media_type=media_type)


async def _record(
    d: Deps, key: keys.Key, name: str, form: dict[str, str], idem: str
) -> tuple[int, str, dict[str, Any]]:
    args = commands.arguments(name, form)
    prop = await _property(d, key)
    token = f"api:{key.property_id}:{idem}"
    command_id = await commands.record(
        d.pool, d.queue, prop, f"api-key:{key.id}", token, name, args
    )
    shown = {"id": str(command_id), "command": name, "status": "queued", "result": None,
             "url": f"/api/v1/commands/{command_id}"}  # fmt: skip
    return 202, "application/json", shown


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadRequest(f"{name} must be a string or a number")
    return str(value)


def _range_form(body: dict[str, Any]) -> dict[str, str]:
    fields = ("room_type", "checkin", "checkout", "units", "rate_cents", "min_stay")
    return {name: _text(body, name) for name in fields if body.get(name) is not None}


@endpoint("write")
async def change_ari(request: Request, key: keys.Key) -> Response:
    return await _change(request, key, "ari.change", _range_form)


@endpoint("write")
async def block(request: Request, key: keys.Key) -> Response:
    return await _change(request, key, "block.add", _range_form)


@endpoint("write")
async def unblock(request: Request, key: keys.Key) -> Response:
    return await _change(request, key, "block.remove", _range_form)


@endpoint("write")
async def cancel(request: Request, key: keys.Key) -> Response:
    code = request.path_params["code"]
    return await _change(request, key, "reservation.cancel", lambda _: {"code": code})


ROUTES = [
    Route("/api/v1/openapi.json", openapi, methods=["GET"]),
    Route("/api/v1/property", get_property, methods=["GET"]),
    Route("/api/v1/room-types", room_types, methods=["GET"]),
    Route("/api/v1/ari", ari, methods=["GET"]),
    Route("/api/v1/ari/changes", change_ari, methods=["POST"]),
    Route("/api/v1/blocks", block, methods=["POST"]),
    Route("/api/v1/unblocks", unblock, methods=["POST"]),
    Route("/api/v1/holds", holds, methods=["GET"]),
    Route("/api/v1/holds/{id}", hold, methods=["GET"]),
    Route("/api/v1/reservations", reservations, methods=["GET"]),
    Route("/api/v1/reservations/{code}", reservation, methods=["GET"]),
    Route("/api/v1/reservations/{code}/cancel", cancel, methods=["POST"]),
    Route("/api/v1/calendars", calendars, methods=["GET"]),
    Route("/api/v1/commands/{id}", command, methods=["GET"]),
]
