"""What one send attempt to a WhatsApp provider came to, and how an HTTP answer maps to it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class SendOutcome:
    """``sent`` with Graph's message id, ``retry`` (429, 5xx, network), ``failed`` (any
    other refusal) or ``undeliverable`` (nothing was sent: outside the 24-hour window)."""

    result: str
    provider_message_id: str | None = None
    error: str | None = None


def outcome_of(
    response: httpx.Response,
    message_id: Callable[[Any], object],
    throttled: bool = False,
    detail: str = "",
) -> SendOutcome:
    """2xx with the provider's message id: sent; 429, 5xx or ``throttled``: retry; any other
    answer: failed. Errors name the status (and nothing of the request)."""
    if response.is_success:
        try:
            return SendOutcome("sent", provider_message_id=str(message_id(response.json())))
        except (ValueError, KeyError, IndexError, TypeError):
            return SendOutcome("retry", error=f"{response.status_code} without a message id")
    error = f"HTTP {response.status_code}{detail}"
    if response.status_code == 429 or response.status_code >= 500 or throttled:
        return SendOutcome("retry", error=error)
    return SendOutcome("failed", error=error)
