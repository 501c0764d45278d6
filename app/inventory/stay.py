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


@dataclass(frozen=True)
class Party:
    """Who sleeps in one unit: adults, and each child's age (None: not said, priced as an
    adult)."""

    adults: int
    children_ages: tuple[int | None, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.adults <= MAX_GUESTS:
            raise BadRequest(f"adults must be between 1 and {MAX_GUESTS}")
        if any(age is not None and not 0 <= age <= 17 for age in self.children_ages):
            raise BadRequest("a child's age must be between 0 and 17")
        if self.guests > MAX_GUESTS:
            raise BadRequest(f"guests must be between 1 and {MAX_GUESTS}")

    @property
    def guests(self) -> int:
        return self.adults + len(self.children_ages)

    def as_json(self) -> dict[str, object]:
        return {"adults": self.adults, "children_ages": list(self.children_ages)}
