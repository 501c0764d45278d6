"""Masking before a model reads, and the field-by-field validation of what it answers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from app.llm.masking import mask
from app.llm.reading import ReadingContext, validated

TODAY = dt.date(2027, 3, 1)
CTX = ReadingContext(today=TODAY, max_guests=6, options=("Standard", "Chalé"))


@pytest.mark.parametrize(
    ("text", "gone", "kept"),
    [
        ("fone +55 48 99123-4567", "99123-4567", "fone [telefone]"),
        ("liga 48991234567 ou 5548991234567", "4899123", "liga [telefone] ou [telefone]"),
        ("recado no 99123-4567", "99123-4567", "recado no"),
        ("email joana.c+x@mail.example.com", "joana", "email [email]"),
        ("CPF 123.456.789-09 e 12345678909", "789", "CPF [documento] e [documento]"),
        ("CNPJ 12.345.678/0001-95", "678", "CNPJ [documento]"),
        ("cartão 4111 1111 1111 1111", "4111", "cartão [cartão]"),
        ("de 10/03 a 12/03/2027, 2 adultos, R$ 300,00", "[", "de 10/03 a 12/03/2027, 2 adultos"),
        ("2027-03-10 a 2027-03-13", "[", "2027-03-10 a 2027-03-13"),
    ],
)
def test_mask_removes_contacts_and_documents_keeps_dates_counts_prices(
    text: str, gone: str, kept: str
) -> None:
    masked = mask(text)
    assert gone not in masked and kept in masked, masked


def reading(**fields: Any) -> dict[str, Any]:
    return {"intent": "availability", **fields}


def test_a_valid_reading_is_kept_whole() -> None:
    got = validated(
        reading(
            checkin="2027-03-10",
            checkout="2027-03-13",
            adults=2,
            children_ages=[5, 8],
            option=2,
            language="es",
        ),
        CTX,
    )
    assert (got.checkin, got.checkout) == (dt.date(2027, 3, 10), dt.date(2027, 3, 13))
    assert (got.adults, got.children_ages, got.option, got.language) == (2, (5, 8), 2, "es")


@pytest.mark.parametrize(
    "dates",
    [
        ("2027-02-27", "2027-03-02"),  # arrives yesterday
        ("2027-03-10", "2027-03-10"),  # no night
        ("2027-03-10", "2027-03-08"),  # leaves before arriving
        ("2028-09-01", "2028-09-03"),  # beyond 18 months
        ("2027-03-10", "2027-05-10"),  # longer than the bot books
        ("2027-03-10", None),  # half a stay
        ("10/03/2027", "13/03/2027"),  # not ISO
    ],
)
def test_dates_that_fail_are_dropped_as_a_pair(dates: tuple[str, str | None]) -> None:
    got = validated(reading(checkin=dates[0], checkout=dates[1], adults=2), CTX)
    assert (got.checkin, got.checkout) == (None, None)
    assert got.adults == 2  # the rest stands


@pytest.mark.parametrize(
    "party",
    [
        {"adults": 40},
        {"adults": 5, "children_ages": [3, 4]},  # 7 > the inn's 6
        {"adults": 0},
        {"adults": True},
        {"adults": 2, "children_ages": [18]},
        {"adults": 2, "children_ages": [-1]},
        {"adults": "2"},
    ],
)
def test_a_party_that_fails_is_dropped(party: dict[str, Any]) -> None:
    got = validated(reading(checkin="2027-03-10", checkout="2027-03-12", **party), CTX)
    assert (got.adults, got.children_ages) == (None, None)
    assert got.checkin == dt.date(2027, 3, 10)


def test_unknown_values_become_nothing() -> None:
    got = validated({"intent": "cancel", "language": "fr", "option": 3}, CTX)
    assert (got.intent, got.language, got.option) == ("unknown", None, None)
