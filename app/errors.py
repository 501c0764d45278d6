"""The application's error tree. Every class's docstring is its default message.

    AppError                      500  something we did not expect
    ├── BadRequest                400  the client sent something we cannot use
    │   └── PayloadTooLarge       413  body over the route's cap
    ├── Unauthorized              401  missing or invalid credentials
    ├── Forbidden                 403  valid credentials, not allowed here
    ├── NotFound                  404  no such thing
    ├── Conflict                  409  contradicts what we already have
    │   ├── NothingAvailable      409  the nights asked for cannot be sold
    │   │   └── StayRuleBroken    409  a stay rule refuses the stay (code: the rule)
    │   └── IdempotencyConflict   409  same idempotency key, different request
    └── Unavailable               503  a dependency is down: retry later
        └── Busy                  503  a row lock was not granted in time

HTTP handlers map these to a status and a small JSON body ``{"error": code}``;
nothing else about the error (and never a stack trace) reaches a client.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar


class AppError(Exception):
    """Unexpected error."""

    status = 500
    code = "internal_error"

    @property
    def fields(self) -> dict[str, object]:
        """Facts a command prints beside the code and message."""
        return {}

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class BadRequest(AppError):
    """The request could not be used."""

    status = 400
    code = "bad_request"


class PayloadTooLarge(BadRequest):
    """The request body is too large."""

    status = 413
    code = "payload_too_large"


class Unauthorized(AppError):
    """Missing or invalid credentials."""

    status = 401
    code = "unauthorized"


class Forbidden(AppError):
    """Credentials are valid but not allowed here."""

    status = 403
    code = "forbidden"


class NotFound(AppError):
    """No such thing."""

    status = 404
    code = "not_found"


class Conflict(AppError):
    """The request contradicts what is already recorded."""

    status = 409
    code = "conflict"


class NothingAvailable(Conflict):
    """Nothing is available for those dates."""

    code = "unavailable"


class StayRuleBroken(NothingAvailable):
    """The stay breaks one of the calendar's stay rules."""

    _SAYS: ClassVar[dict[str, str]] = {
        "min_stay": "stays arriving {on} are at least {bound} nights",
        "max_stay": "stays arriving {on} are at most {bound} nights",
        "closed_to_arrival": "no arrivals on {on}",
        "closed_to_departure": "no departures on {on}",
        "stop_sell": "{on} is closed to sale",
    }

    def __init__(self, rule: str, on: dt.date, bound: int | None = None) -> None:
        super().__init__(f"{rule}: " + self._SAYS[rule].format(on=on.isoformat(), bound=bound))
        self.code = rule
        self.on = on
        self.bound = bound

    @property
    def fields(self) -> dict[str, object]:
        shown: dict[str, object] = {"date": self.on.isoformat()}
        return shown if self.bound is None else {**shown, "nights": str(self.bound)}


class PreviewChanged(Conflict):
    """What the command would do changed since its preview: nothing was done."""

    code = "preview_changed"

    def __init__(self, preview: dict[str, object]) -> None:
        super().__init__()
        self.preview = preview

    @property
    def fields(self) -> dict[str, object]:
        return self.preview


class IdempotencyConflict(Conflict):
    """This idempotency key was already used for a different request."""

    code = "idempotency_conflict"


class Unavailable(AppError):
    """A dependency is unavailable; retry later."""

    status = 503
    code = "service_unavailable"


class Busy(Unavailable):
    """The calendar is busy; retry shortly."""

    code = "busy"
