"""Brazilian holidays by name: the movable feasts from Easter, checked against the calendar,
and the stay each suggests."""

from __future__ import annotations

import datetime as dt

import pytest

from app.conversations.holidays import easter, holiday_stay
from app.conversations.understanding import understand

# From the published calendar: Easter Sunday, Carnaval Tuesday, and Good Friday.
CALENDAR = [
    (2027, dt.date(2027, 3, 28), dt.date(2027, 2, 9), dt.date(2027, 3, 26)),
    (2028, dt.date(2028, 4, 16), dt.date(2028, 2, 29), dt.date(2028, 4, 14)),
    (2029, dt.date(2029, 4, 1), dt.date(2029, 2, 13), dt.date(2029, 3, 30)),
    (2038, dt.date(2038, 4, 25), dt.date(2038, 3, 9), dt.date(2038, 4, 23)),
]


@pytest.mark.parametrize(("year", "sunday", "carnaval", "good_friday"), CALENDAR)
def test_carnaval_and_semana_santa_match_the_calendar(
    year: int, sunday: dt.date, carnaval: dt.date, good_friday: dt.date
) -> None:
    assert easter(year) == sunday
    before = dt.date(year, 1, 1)
    stay = holiday_stay("carnaval", before)  # Friday before to Ash Wednesday
    assert (stay.checkin, stay.checkout) == (
        carnaval - dt.timedelta(days=4),
        carnaval + dt.timedelta(days=1),
    )
    assert stay.checkin.weekday() == 4 and stay.checkout.weekday() == 2
    holy = holiday_stay("semana santa", before)  # Maundy Thursday to Easter Sunday
    assert (holy.checkin, holy.checkout) == (good_friday - dt.timedelta(days=1), sunday)


@pytest.mark.parametrize(
    ("text", "name", "checkin", "checkout"),
    [
        # Tiradentes 2027 is a Wednesday: its eve to the morning after.
        ("tem vaga no feriado de tiradentes?", "tiradentes", (4, 20), (4, 22)),
        # 7 de setembro 2027 is a Tuesday: from the Saturday before.
        ("feriado de 7 de setembro", "independencia", (9, 4), (9, 8)),
        # Corpus Christi 2027: Easter + 60 = Thursday 27 May, bridged to Sunday.
        ("corpus christi, somos 2", "corpus christi", (5, 26), (5, 30)),
        ("reveillon pra 4 pessoas", "reveillon", (12, 29), (1, 2)),
        ("navidad, 2 adultos", "natal", (12, 24), (12, 26)),
    ],
)
def test_a_holiday_by_name_is_a_suggested_stay(
    text: str, name: str, checkin: tuple[int, int], checkout: tuple[int, int]
) -> None:
    u = understand(text, dt.date(2027, 3, 10))
    assert u.holiday is not None and u.holiday.name == name
    assert (u.holiday.checkin.month, u.holiday.checkin.day) == checkin
    assert (u.holiday.checkout.month, u.holiday.checkout.day) == checkout
    assert u.checkin is None and u.checkout is None  # proposed, never assumed


def test_a_holiday_already_begun_is_next_years() -> None:
    stay = holiday_stay("carnaval", dt.date(2027, 2, 6))  # the day after it began
    assert stay.checkin == dt.date(2028, 2, 25)
