"""Replies read like a person wrote them: a count always meets its noun in the right number."""

from __future__ import annotations

import string

import pytest

from app.conversations import replies, staff_commands, staff_notices


def _fields(template: str, n: int) -> dict[str, object]:
    """A value for every field of ``template``: ``n`` where a count is expected."""
    values: dict[str, object] = {}
    for _, name, spec, _ in string.Formatter().parse(template):
        if name:
            values[name] = n if spec in replies.NOUNS or name in ("count", "most", "n") else "x"
    return values


GUEST_TEXTS = [
    (key, lang, text)
    for key, by_lang in replies.TEMPLATES.items()
    for lang, text in by_lang.items()
]
STAFF_TEXTS = [
    (key, replies.DEFAULT_LANGUAGE, text)
    for texts in (staff_notices.TEMPLATES, staff_commands.TEMPLATES)
    for key, text in texts.items()
]


@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize(("key", "lang", "template"), GUEST_TEXTS + STAFF_TEXTS)
def test_no_reply_hedges_a_plural(key: str, lang: str, template: str, n: int) -> None:
    """Every guest and staff text, rendered with counts 1 and 2, says no "(s)"."""
    text = replies.fill(template, lang, **_fields(template, n))
    assert "(s)" not in text, text


@pytest.mark.parametrize(
    ("n", "noun", "lang", "expected"),
    [
        (1, "night", "pt", "1 noite"),
        (3, "night", "pt", "3 noites"),
        (2, "person", "pt", "2 pessoas"),
        (1, "person", "es", "1 persona"),
        (2, "night", "es", "2 noches"),
        (2, "night", "en", "2 nights"),
        (1, "person", "en", "1 guest"),
    ],
)
def test_counts_take_the_number_of_their_noun(n: int, noun: str, lang: str, expected: str) -> None:
    """count() writes the singular for one and the plural otherwise, per language."""
    assert replies.count(n, noun, lang) == expected


def test_a_quote_for_one_night_and_one_guest_is_singular() -> None:
    """The quote says "1 pessoa … (1 noite)", not "1 pessoas" or "noite(s)"."""
    party = replies.party(1, None, None, "pt")
    text = replies.render(
        "quote", "pt", party=party, checkin="01/02", checkout="02/02", nights=1, options="1. A"
    )
    assert text.startswith("Para 1 pessoa, de 01/02 a 02/02 (1 noite):"), text


@pytest.mark.parametrize(
    ("adults", "ages", "language", "expected"),
    [
        (2, [5, 8], "pt", "2 adultos e 2 crianças (5 e 8 anos)"),
        (2, [5, 8], "es", "2 adultos y 2 niños (5 y 8 años)"),
        (2, [5, 8], "en", "2 adults and 2 children (ages 5 and 8)"),
        (1, [1], "pt", "1 adulto e 1 criança (1 ano)"),
        (2, [0, 6], "en", "2 adults and 2 children (baby and age 6)"),
        (2, [None], "es", "2 adultos y 1 niño"),
        (3, None, "pt", "3 pessoas"),
    ],
)
def test_a_party_is_restated_as_understood(
    adults: int, ages: list[int | None] | None, language: str, expected: str
) -> None:
    guests = adults + len(ages or [])
    assert replies.party(guests, adults, ages, language) == expected
