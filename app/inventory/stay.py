"""A stay: check-in inclusive, check-out exclusive, validated once."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from app.errors import BadRequest

# Longer stays are negotiated with the inn, not booked by the bot.
MAX_STAY_NIGHTS = 30
MAX_GUESTS = 20


@dataclass(frozen=True)
class Stay:
    checkin: dt.date
    checkout: dt.date
    guests: int

    def __post_init__(self) -> None:
        if self.checkout <= self.checkin:
            raise BadRequest("check-out must be after check-in")
        if self.nights > MAX_STAY_NIGHTS:
            raise BadRequest(f"a stay is at most {MAX_STAY_NIGHTS} nights")
        if not 1 <= self.guests <= MAX_GUESTS:
            raise BadRequest(f"guests must be between 1 and {MAX_GUESTS}")

    @property
    def nights(self) -> int:
        return (self.checkout - self.checkin).days

    def dates(self) -> list[dt.date]:
        return [self.checkin + dt.timedelta(days=i) for i in range(self.nights)]
