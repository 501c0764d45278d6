"""What staff type on the desk, read or refused in one line."""

from __future__ import annotations

import datetime as dt

import asyncpg
import pytest

from app.conversations import desk_input
from app.errors import BadRequest
from tests.inventory.conftest import make_calendar

TODAY = dt.date(2026, 12, 2)
EX = "#bloquear std 10/01 12/01"


@pytest.mark.parametrize(
    ("first", "second", "stay"),
    [
        ("10/01", "12/01", (dt.date(2027, 1, 10), dt.date(2027, 1, 12))),
        ("02/12", "03/12", (dt.date(2026, 12, 2), dt.date(2026, 12, 3))),
        ("30/12", "02/01", (dt.date(2026, 12, 30), dt.date(2027, 1, 2))),
        ("5/2/2027", "7/2/27", (dt.date(2027, 2, 5), dt.date(2027, 2, 7))),
    ],
)
def test_dates_are_the_next_occurrence_check_in_to_check_out(
    first: str, second: str, stay: tuple[dt.date, dt.date]
) -> None:
    assert desk_input.dates(first, second, TODAY, EX) == stay


@pytest.mark.parametrize(
    ("first", "second", "says"),
    [
        ("31/02", "02/03", "data inválida: 31/02"),
        ("amanhã", "12/01", "data inválida: amanhã"),
        ("01/11/2026", "03/11/2026", "já passou"),
        ("12/01", "10/01", "a saída (10/01) deve ser depois da entrada (12/01)"),
        ("12/01", "12/01", "deve ser depois"),
    ],
)
def test_bad_dates_say_what_is_wrong_with_an_example(first: str, second: str, says: str) -> None:
    with pytest.raises(BadRequest) as refused:
        desk_input.dates(first, second, TODAY, EX)
    assert says in str(refused.value) and EX in str(refused.value)


@pytest.mark.parametrize(
    ("text", "cents"),
    [("350", 35000), ("350,50", 35050), ("R$ 350,50", 35050), ("r$1.200,5", 120050)],
)
def test_money_becomes_integer_cents(text: str, cents: int) -> None:
    assert desk_input.money(text, "350,50") == cents


@pytest.mark.parametrize("text", ["trezentos", "350.5", "-350", "350,505", "R$"])
def test_what_is_not_money_is_refused(text: str) -> None:
    with pytest.raises(BadRequest, match="valor inválido"):
        desk_input.money(text, "350,50")


def test_a_party_is_adults_and_the_childrens_ages() -> None:
    assert desk_input.party("2+5,8", EX).as_json() == {"adults": 2, "children_ages": [5, 8]}
    assert desk_input.party("3", EX).as_json() == {"adults": 3, "children_ages": []}
    with pytest.raises(BadRequest, match="hóspedes inválidos"):
        desk_input.party("dois", EX)


async def test_a_room_is_its_code_or_an_unambiguous_prefix_of_its_name(
    conn: asyncpg.Connection,
) -> None:
    cal = await make_calendar(conn, [("std", 2, 1, 100), ("sup", 2, 1, 100), ("fam", 4, 1, 100)])
    pid = cal.property.id
    assert await desk_input.room(conn, pid, "STD", EX) == "std"
    assert await desk_input.room(conn, pid, "Fa", EX) == "fam"
    with pytest.raises(BadRequest, match="quarto ambíguo: s pode ser std, sup"):
        await desk_input.room(conn, pid, "s", EX)
    with pytest.raises(BadRequest, match=r"quarto desconhecido: suíte \(quartos: fam, std, sup\)"):
        await desk_input.room(conn, pid, "suíte", EX)
