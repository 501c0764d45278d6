"""What one send attempt to a WhatsApp provider came to, and how an HTTP answer maps to it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class SendOutcome:
    """``sent`` with Graph's message id, ``retry`` (429, 5xx, network), ``failed`` (any
    other refusal) or ``undeliverable`` (nothing was sent: outside the 24-hour window).
    ``uncertain``: a retry after which the provider may still have taken the message (the
    request went out and no answer came back)."""

    result: str
    provider_message_id: str | None = None
    error: str | None = None
    uncertain: bool = False


# Failures before the request left: the provider cannot have taken the message.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def network_failure(exc: httpx.HTTPError) -> SendOutcome:
    """A retry; uncertain unless the request never left (the connection was refused)."""
    return SendOutcome(
        "retry", error=f"network: {type(exc).__name__}", uncertain=not isinstance(exc, _NOT_SENT)
    )


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
