"""Pure ASGI middleware: request context, the access line, and the last-resort 500.

Pure ASGI (not BaseHTTPMiddleware) so the contextvars it sets are the ones the
handlers' log lines see.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.logging import correlation_id, request_fields, safe_correlation, trace

log = logging.getLogger("app.http")

_CLOUD_TRACE = re.compile(r"^([0-9a-f]{32})(?:/|$)")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def _trace_id(headers: Headers) -> str | None:
    for header, pattern in (("x-cloud-trace-context", _CLOUD_TRACE), ("traceparent", _TRACEPARENT)):
        match = pattern.match(headers.get(header, ""))
        if match:
            return match.group(1)
    return None


def _correlation_id(headers: Headers, trace_id: str | None) -> str:
    for header in ("x-correlation-id", "x-cloudtasks-taskname"):
        value = safe_correlation(headers.get(header))
        if value is not None:
            return value
    return trace_id or uuid.uuid4().hex


class RequestContext:
    """Binds correlation id and trace, echoes the id, and logs one line per request.

    The access line carries method, path template, status and duration, plus any
    fields a handler added with ``annotate_request`` — never bodies or query strings.
    An exception that escapes the app becomes a 500 whose body holds only an error
    id; the same id is on the log line that carries the traceback.
    """

    def __init__(
        self, app: ASGIApp, path_template: Callable[[Scope], str], project: str | None
    ) -> None:
        self.app = app
        self.path_template = path_template
        self.project = project

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        trace_id = _trace_id(headers)
        cid = _correlation_id(headers, trace_id)
        trace_value = None
        if trace_id is not None:
            trace_value = f"projects/{self.project}/traces/{trace_id}" if self.project else trace_id
        fields: dict[str, Any] = {}
        tokens = (correlation_id.set(cid), trace.set(trace_value), request_fields.set(fields))
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-correlation-id", cid.encode()),
                ]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            error_id = uuid.uuid4().hex
            fields["error_id"] = error_id
            log.exception("unhandled_error", extra={"error_id": error_id})
            if not response_started:
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send(
                    {"type": "http.response.body", "body": orjson.dumps({"error_id": error_id})}
                )
        finally:
            level = (
                logging.ERROR
                if status >= 500
                else logging.WARNING
                if status >= 400
                else logging.INFO
            )
            log.log(
                level,
                "http_request",
                extra={
                    "method": scope["method"],
                    "path": self.path_template(scope),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    **fields,
                },
            )
            for var, token in zip((correlation_id, trace, request_fields), tokens, strict=True):
                var.reset(token)  # type: ignore[attr-defined]
