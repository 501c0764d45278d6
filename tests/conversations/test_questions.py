"""Ask, don't guess: the doubts understanding raises about dates, the readings it offers,
and that no text whatever makes it raise or read an impossible stay."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.conversations.understanding import understand

TODAY = dt.date(2027, 3, 10)  # a Wednesday


def d(month: int, day: int, year: int = 2027) -> dt.date:
    return dt.date(year, month, day)


@pytest.mark.parametrize(
    ("text", "language", "question", "choices"),
    [
        (
            "dia 15 ou 16 de abril ate o dia 19, 2 pessoas",
            "pt",
            "ambiguous_dates",
            ((d(4, 15), d(4, 19)), (d(4, 16), d(4, 19))),
        ),
        (
            "llegamos el 15 o 16 de abril hasta el 19",
            "es",
            "ambiguous_dates",
            ((d(4, 15), d(4, 19)), (d(4, 16), d(4, 19))),
        ),
        (
            "arriving the 15th or 16th of April, leaving the 19th",
            "en",
            "ambiguous_dates",
            ((d(4, 15), d(4, 19)), (d(4, 16), d(4, 19))),
        ),
        # An English 05/04: day first or month first (the engine drops a 92-night reading).
        (
            "Hi, a room 05/04 to 08/04 please",
            "en",
            "ambiguous_dates",
            ((d(4, 5), d(4, 8)), (d(5, 4), d(8, 4))),
        ),
        # "sexta dia 18": the 18th is a Thursday; the 18th, or Friday the 19th.
        (
            "quero sexta dia 18 ate domingo",
            "pt",
            "weekday_mismatch",
            ((d(3, 18), d(3, 21)), (d(3, 19), d(3, 21))),
        ),
        (
            "from January 10 2027 to January 12 2027",
            "en",
            "past_dates",
            ((d(1, 10, 2028), d(1, 12, 2028)),),
        ),
        ("oi, de 31/04 a 02/05", "pt", "no_such_date", ()),
        ("hola, entrada 20/05 salida 18/05", "es", "checkout_before_checkin", ()),
        ("entre 10 e 20 de abril, umas 3 noites", "pt", "ambiguous_dates", ()),
        ("del 18 al 20 de marzo, son 3 noches", "es", "ambiguous_dates", ()),
    ],
)
def test_a_doubt_about_the_dates_is_a_question_with_its_readings(
    text: str, language: str, question: str, choices: tuple[tuple[dt.date, dt.date], ...]
) -> None:
    u = understand(text, TODAY)
    assert (u.language, u.question, u.choices) == (language, question, choices)
    assert u.checkin is None and u.checkout is None  # nothing is taken for granted
    assert u.intent == "availability"


def test_a_reading_without_doubt_asks_nothing() -> None:
    u = understand("chegamos dia 7 de maio e saimos dia 14", TODAY)
    assert (u.checkin, u.checkout, u.question, u.choices) == (d(5, 7), d(5, 14), None, ())


# Text a guest could send: the words and marks that make dates, mixed with anything.
_WORDS = (
    "dia de a ao ate al hasta to from the e y and ou or sexta sabado domingo friday "
    "amanha hoje tomorrow semana que vem next week fim de semana finde noites nights "
    "janeiro fevereiro abril maio dezembro march april may june natal carnaval pascoa "
    "reveillon tiradentes 1 2 3 5 7 12 14 15 16 19 20 28 29 30 31 32 0 99 2026 2027 2028 "
    "/ - . , º 1º 3rd 15th 29/02 31/04 12/31 05/04 1/1/2027 20/03/26 10-12 "
    "adultos criancas kids 2 pessoas somos casal"
)
_PIECES = st.sampled_from([*_WORDS.split(), "\u2013"])  # and an en dash
_TEXT = st.one_of(
    st.text(max_size=200),
    st.lists(_PIECES, max_size=20).map(" ".join),
)
_DAY = st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2040, 12, 31))


@settings(max_examples=1500, deadline=None)
@given(text=_TEXT, today=_DAY)
def test_understanding_never_raises_nor_reads_an_impossible_stay(text: str, today: dt.date) -> None:
    u = understand(text, today)
    if u.checkin is not None:
        assert u.checkin >= today
    if u.checkout is not None:
        assert u.checkin is not None and u.checkout > u.checkin
    for checkin, checkout in u.choices:
        assert checkin >= today and (checkout is None or checkout > checkin)
    if u.holiday is not None:
        assert today <= u.holiday.checkin < u.holiday.checkout
    for age in u.children_ages or ():
        assert age is None or age >= 0
    assert u.adults is None or u.adults >= 0
