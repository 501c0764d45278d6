"""JSON log lines for Cloud Logging, with request context from contextvars.

Every line has ``severity``, ``message`` (a stable snake_case event name),
``role`` and ``correlation_id``; ``logging.googleapis.com/trace`` when the request
carried a trace header. Callers pass ids only, never PII: no phone number, name,
e-mail, message text, raw payload or secret is ever given to a logger.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.orjson import OrjsonFormatter

TRACE_FIELD = "logging.googleapis.com/trace"

_role: str = "-"
correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
trace: ContextVar[str | None] = ContextVar("trace", default=None)
# Extra fields a handler adds to its request's single access line (e.g. a rejection reason).
request_fields: ContextVar[dict[str, Any] | None] = ContextVar("request_fields", default=None)


_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def safe_correlation(value: object) -> str | None:
    """``value`` if it can serve as a correlation id (short, harmless characters)."""
    return value if isinstance(value, str) and _SAFE_ID.match(value) else None


def annotate_request(**fields: Any) -> None:
    """Add ids or a reason to the current request's access line."""
    current = request_fields.get()
    if current is not None:
        current.update(fields)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.role = _role
        record.correlation_id = correlation_id.get()
        trace_value = trace.get()
        if trace_value is not None:
            setattr(record, TRACE_FIELD, trace_value)
        return True


def configure_logging(role: str | None, level: str = "INFO", stream: Any = None) -> None:
    """Route every logger (ours, hypercorn's, libraries') through one JSON handler."""
    global _role
    _role = role or "-"
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.addFilter(ContextFilter())
    handler.setFormatter(
        OrjsonFormatter(
            "{levelname}{message}{name}",
            style="{",
            rename_fields={"levelname": "severity", "name": "logger"},
            timestamp="time",
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Loggers that would otherwise log URLs, payloads or free-text banners at INFO.
    for noisy in ("httpx", "httpcore", "hpack", "asyncio", "stripe", "yoyo", "hypercorn.error"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
