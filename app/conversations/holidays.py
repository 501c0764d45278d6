"""Brazilian holidays by name, and the stay a guest asking for one most likely means.

Movable feasts are computed from Easter (the Gregorian computus, Meeus/Jones/Butcher), so
any year works: Carnaval Tuesday is Easter - 47 days, Good Friday Easter - 2, Corpus Christi
Easter + 60. A fixed holiday's stay covers it and the long weekend around it (a Thursday
holiday bridges to Sunday, a Tuesday one from Saturday). The stay is a suggestion: the
conversation proposes it and the guest confirms or gives their own dates.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Holiday:
    name: str  # reveillon, carnaval, semana santa, tiradentes, …
    checkin: dt.date
    checkout: dt.date


def easter(year: int) -> dt.date:
    """Easter Sunday of ``year`` (Gregorian)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    leap = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * leap) // 451
    month = (h + leap - 7 * m + 114) // 31
    day = (h + leap - 7 * m + 114) % 31 + 1
    return dt.date(year, month, day)


# How a holiday on each weekday is stayed: nights from its eve (or the weekend before) to
# the morning after (or the end of the weekend after).
_AROUND = {0: (-3, 1), 1: (-3, 1), 2: (-1, 1), 3: (-1, 3), 4: (-1, 2), 5: (-1, 1), 6: (-2, 1)}
_FIXED = {
    "tiradentes": (4, 21),
    "independencia": (9, 7),
    "aparecida": (10, 12),
    "finados": (11, 2),
    "proclamacao": (11, 15),
    "natal": (12, 25),
}

# What guests call each holiday (text already lower-cased and without accents).
HOLIDAY_NAMES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("reveillon", r"\b(?:reveillon|ano novo|virada do ano|ano nuevo|new year'?s?(?: eve)?)\b"),
        ("carnaval", r"\b(?:carnaval|carnival)\b"),
        ("semana santa", r"\b(?:semana santa|pascoa|pascua|easter|holy week)\b"),
        ("tiradentes", r"\btiradentes\b"),
        ("corpus christi", r"\bcorpus christi\b"),
        ("independencia", r"\b(?:feriad(?:o|ao) (?:de |do )?7 de setembro|independencia)\b"),
        ("aparecida", r"\b(?:feriad(?:o|ao) (?:de |do )?12 de outubro|nossa senhora aparecida)\b"),
        ("finados", r"\bfinados\b"),
        ("proclamacao", r"\b(?:feriad(?:o|ao) (?:de |do )?15 de novembro|proclamacao)\b"),
        ("natal", r"\b(?:natal|navidad|christmas)\b"),
    )
)


def _stay_in(name: str, year: int) -> tuple[dt.date, dt.date]:
    if name == "reveillon":  # four nights around the turn of the year
        return dt.date(year, 12, 29), dt.date(year + 1, 1, 2)
    if name == "carnaval":  # Friday before to Ash Wednesday
        tuesday = easter(year) - dt.timedelta(days=47)
        return tuesday - dt.timedelta(days=4), tuesday + dt.timedelta(days=1)
    if name == "semana santa":  # Maundy Thursday to Easter Sunday
        sunday = easter(year)
        return sunday - dt.timedelta(days=3), sunday
    day = (
        easter(year) + dt.timedelta(days=60)
        if name == "corpus christi"
        else dt.date(year, *_FIXED[name])
    )
    before, after = _AROUND[day.weekday()]
    return day + dt.timedelta(days=before), day + dt.timedelta(days=after)


def holiday_stay(name: str, today: dt.date) -> Holiday:
    """The next stay for the holiday that has not begun."""
    for year in (today.year - 1, today.year, today.year + 1):
        checkin, checkout = _stay_in(name, year)
        if checkin >= today:
            return Holiday(name, checkin, checkout)
    checkin, checkout = _stay_in(name, today.year + 2)
    return Holiday(name, checkin, checkout)
