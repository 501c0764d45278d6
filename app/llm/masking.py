"""What a model does not need to read a booking question: contact details and numbers
that identify a person or a card. Dates, counts and prices stay.

Placeholders, not deletions, so the sentence still reads ("meu e-mail é [email]").
"""

from __future__ import annotations

import re

import phonenumbers

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# CPF (000.000.000-00) and CNPJ (00.000.000/0000-00), punctuated or not.
_DOCUMENT = re.compile(r"\b\d{3}\.?\d{3}\.?\d{3}-?\d{2}\b|\b\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2}\b")
# A card-like number: 13 to 19 digits, in groups or not.
_CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
# Any other run of 9 or more digits: a number phonenumbers did not take for one (no area
# code), an account. Fewer digits are dates ("2027-03-10"), prices and counts.
_LONG_NUMBER = re.compile(r"\+?\d(?:[ .-]?\d){8,}")


def mask(text: str) -> str:
    masked = _EMAIL.sub("[email]", text)
    # Brazil's numbers first, in every form the library knows (with or without +55, the
    # area code, the ninth digit).
    found = phonenumbers.PhoneNumberMatcher(masked, "BR", leniency=phonenumbers.Leniency.VALID)
    for match in reversed(list(found)):
        masked = masked[: match.start] + "[telefone]" + masked[match.end :]
    masked = _DOCUMENT.sub("[documento]", masked)
    masked = _CARD.sub("[cartão]", masked)
    return _LONG_NUMBER.sub("[número]", masked)
