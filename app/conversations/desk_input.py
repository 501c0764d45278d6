"""Reading what staff type on the desk: dates "10/01" (the next one), money "R$ 350,50",
a room by its code or an unambiguous prefix of its name, a party "2+5,8". Each refusal is
one line saying what was wrong, with an example."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

import asyncpg

from app.db import QUERIES
from app.errors import BadRequest
from app.inventory.stay import MAX_STAY_NIGHTS, Party

_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})(?:/(\d{2}|\d{4}))?$")
_MONEY = re.compile(r"^(?:r\$\s*)?(\d{1,3}(?:\.\d{3})+|\d+)(?:,(\d{1,2}))?$", re.IGNORECASE)
_PARTY = re.compile(r"^(\d{1,2})(?:\+(\d{1,2}(?:,\d{1,2})*))?$")


def _date(text: str, after: dt.date, example: str) -> dt.date:
    """``text`` as a date: with its year, or the first such day from ``after`` on."""
    match = _DATE.match(text)
    if match is None:
        raise BadRequest(f"data inválida: {text}. Exemplo: {example}")
    day, month, year = int(match[1]), int(match[2]), match[3]
    years = [int(year) + (2000 if len(year) == 2 else 0)] if year else [after.year, after.year + 1]
    for candidate in years:
        try:
            value = dt.date(candidate, month, day)
        except ValueError:
            raise BadRequest(f"data inválida: {text}. Exemplo: {example}") from None
        if year or value >= after:
            return value
    raise BadRequest(f"data inválida: {text}. Exemplo: {example}")


def dates(first: str, second: str, today: dt.date, example: str) -> tuple[dt.date, dt.date]:
    """A check-in and check-out (the morning the room frees up)."""
    checkin = _date(first, today, example)
    if checkin < today:
        raise BadRequest(f"a entrada {checkin:%d/%m/%Y} já passou. Exemplo: {example}")
    checkout = _date(second, checkin, example)
    if checkout <= checkin or (checkout - checkin).days > MAX_STAY_NIGHTS:
        raise BadRequest(
            f"a saída ({second}) deve ser depois da entrada ({first}). Exemplo: {example}"
        )
    return checkin, checkout


def money(text: str, example: str) -> int:
    """Cents of "350", "350,50", "R$ 1.350,50"."""
    match = _MONEY.match(text.strip())
    if match is None:
        raise BadRequest(f"valor inválido: {text}. Exemplo: {example}")
    whole = int(match[1].replace(".", ""))
    cents = int((match[2] or "0").ljust(2, "0"))
    return whole * 100 + cents


def count(text: str, what: str, example: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 1000:
        raise BadRequest(f"{what} inválido: {text}. Exemplo: {example}")
    return int(text)


def party(text: str, example: str) -> Party:
    """ "2" or "2+5,8": adults, and each child's age."""
    match = _PARTY.match(text)
    if match is None:
        raise BadRequest(f"hóspedes inválidos: {text}. Exemplo: {example}")
    ages = tuple(int(age) for age in match[2].split(",")) if match[2] else ()
    return Party(int(match[1]), ages)


def _folded(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


async def room(conn: asyncpg.Connection, property_id: int, word: str, example: str) -> str:
    """The room type's code: ``word`` is its code, or a prefix of exactly one's code or
    name (accents and case aside)."""
    rows = await conn.fetch(QUERIES["room_types_of_property"], property_id)
    wanted = _folded(word)
    exact = [r["code"] for r in rows if _folded(r["code"]) == wanted]
    if exact:
        return str(exact[0])
    found = [
        r["code"]
        for r in rows
        if _folded(r["code"]).startswith(wanted) or _folded(r["name"]).startswith(wanted)
    ]
    if len(found) == 1:
        return str(found[0])
    codes = ", ".join(r["code"] for r in rows)
    if found:
        raise BadRequest(f"quarto ambíguo: {word} pode ser {', '.join(found)}. Exemplo: {example}")
    raise BadRequest(f"quarto desconhecido: {word} (quartos: {codes}). Exemplo: {example}")
