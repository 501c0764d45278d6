"""What the conversation does with what it understood (issue 13), end to end through the
real stack: a holiday proposed and confirmed, a question about the dates answered, a party
restated with its children, a party that needs several rooms, and one the inn cannot host."""

from __future__ import annotations

import datetime as dt

from app.conversations import replies
from app.conversations.holidays import holiday_stay
from tests.e2e.conftest import Stack
from tests.e2e.test_whatsapp_conversations import (
    INN_TZ,
    LINK,
    ask,
    conversation,
    day,
    held_nights_match_active_holds,
    numbered,
)
from tests.inventory.conftest import START, make_calendar


def today_at_the_inn() -> dt.date:
    return dt.datetime.now(INN_TZ).date()


async def test_a_holiday_is_proposed_and_a_yes_quotes_it_for_the_party(stack: Stack) -> None:
    """ "Carnaval" is a suggested stay, not dates taken for granted; "sim" takes it, and the
    quote restates the dates and the party with the children's ages."""
    today = today_at_the_inn()
    carnaval = holiday_stay("carnaval", today)
    async with stack.pool.acquire() as conn:
        days = (carnaval.checkout - today).days + 1
        await make_calendar(
            conn, [("std", 2, 2, 30000), ("fam", 5, 1, 50000)], start=today, days=days
        )
    guest = "5511970001301"

    offer = await ask(stack, guest, "oii tem vaga pro carnaval? 2 adultos e 2 criancas de 5 e 8")
    nights = (carnaval.checkout - carnaval.checkin).days
    assert offer == (
        f"Para o Carnaval, sugiro de {day(carnaval.checkin)} a {day(carnaval.checkout)} "
        f"({nights} noites). Quer essas datas? Responda sim, ou mande as suas."
    ), offer
    assert (await conversation(stack))["state"] == "collecting"

    quote = await ask(stack, guest, "sim")
    assert quote.startswith(
        f"Para 2 adultos e 2 crianças (5 e 8 anos), de {day(carnaval.checkin)} a "
        f"{day(carnaval.checkout)} ({nights} noites):"
    ), quote
    total = replies.money(nights * 50000, "BRL", "pt")
    assert numbered(quote) == [f"1. Fam: R$ 500,00 por noite, total {total}"], quote
    stay = (await conversation(stack))["context"]["stay"]
    assert stay["adults"] == 2 and stay["children_ages"] == [5, 8] and stay["guests"] == 4


async def test_a_question_about_the_dates_is_answered_by_picking_a_reading(stack: Stack) -> None:
    """ "15 ou 16" has two readings: the bot offers both, "2" takes the second, and the quote
    follows; nothing is held before the guest chooses a room."""
    async with stack.pool.acquire() as conn:
        await make_calendar(conn, [("std", 2, 2, 30000)], days=30)
    guest = "5511970001302"
    question = await ask(stack, guest, "oi, dia 15 ou 16/03/2031 ate 19/03/2031, somos 2")
    assert question == (
        "Para eu não errar as datas: Você quis dizer:\n"
        "1. de 15/03/2031 a 19/03/2031\n2. de 16/03/2031 a 19/03/2031\n"
        "Responda com o número, ou mande as datas certas."
    ), question
    quote = await ask(stack, guest, "2")
    assert quote.startswith("Para 2 pessoas, de 16/03/2031 a 19/03/2031 (3 noites):"), quote
    assert await stack.pool.fetchval("SELECT count(*) FROM holds") == 0


async def test_dates_in_a_past_year_are_offered_a_year_on(stack: Stack) -> None:
    """A year that has passed is asked about, with the same dates a year on; "yes" takes
    them and the next question follows (how many guests)."""
    async with stack.pool.acquire() as conn:
        await make_calendar(conn, [("std", 2, 2, 30000)], days=10)
    checkin = today_at_the_inn() + dt.timedelta(days=40)
    checkout = checkin + dt.timedelta(days=2)
    written = [f"{d:%B} {d.day} {d.year - 1}" for d in (checkin, checkout)]
    guest = "15557001303"
    question = await ask(stack, guest, f"Hi, a room from {written[0]} to {written[1]}?")
    meant = f"{replies.day(checkin, 'en')} to {replies.day(checkout, 'en')}"
    assert question == (
        f"Those dates have passed. Did you mean {meant}? Reply yes, or send the right dates."
    ), question
    follow = await ask(stack, guest, "yes")
    assert follow == f"From {meant}. How many guests?", follow


async def test_children_without_adults_ask_how_many_adults(stack: Stack) -> None:
    """A party of children alone is not a party: the bot asks for the adults, and a bare
    number answers that."""
    async with stack.pool.acquire() as conn:
        await make_calendar(conn, [("fam", 4, 1, 50000)], days=30)
    guest = "5491170001304"
    first = await ask(
        stack, guest, f"hola, del {day(START, 4)} al {day(START, 6)} con 2 chicos de 3 y 9"
    )
    assert first == "¿Y cuántos adultos?", first
    quote = await ask(stack, guest, "2")
    assert quote.startswith(
        f"Para 2 adultos y 2 niños (3 y 9 años), del {day(START, 4)} al {day(START, 6)} (2 noches):"
    ), quote


async def test_a_party_no_room_hosts_alone_is_offered_several_rooms(stack: Stack) -> None:
    """Six adults where the largest room takes four: the family room and a standard room
    together, held as one hold of two room types."""
    async with stack.pool.acquire() as conn:
        cal = await make_calendar(conn, [("std", 2, 2, 30000), ("fam", 4, 1, 50000)], days=30)
    guest = "5511970001305"
    quote = await ask(stack, guest, f"de {day(START, 4)} a {day(START, 6)}, somos 6 adultos")
    assert quote.startswith(f"Para 6 pessoas, de {day(START, 4)} a {day(START, 6)} (2 noites):")
    assert numbered(quote) == [
        "1. Fam + Std (R$ 1.000,00 + R$ 600,00): R$ 800,00 por noite, total R$ 1.600,00"
    ], quote
    link = await ask(stack, guest, "quero o 1")
    assert LINK.search(link) and link.startswith("Pré-reserva feita: Fam + Std,"), link
    held = await stack.pool.fetch(
        "SELECT room_type_id, sum(qty) AS qty FROM hold_nights GROUP BY room_type_id ORDER BY 1"
    )
    assert sorted((r["room_type_id"], r["qty"]) for r in held) == sorted(
        [(cal.room_type_ids["std"], 2), (cal.room_type_ids["fam"], 2)]
    )
    assert await stack.pool.fetchval("SELECT guests FROM holds") == 6
    await held_nights_match_active_holds(stack)


async def test_a_party_beyond_the_whole_inn_is_told_its_capacity(stack: Stack) -> None:
    """The bound is every room together (two rooms of 2, one of 4: 8), not the largest room's 4."""
    async with stack.pool.acquire() as conn:
        await make_calendar(conn, [("std", 2, 2, 30000), ("fam", 4, 1, 50000)], days=30)
    guest = "5511970001306"
    reply = await ask(stack, guest, f"de {day(START, 4)} a {day(START, 6)}, somos 9")
    assert reply.startswith("A pousada recebe até 8 pessoas ao todo."), reply
    assert await stack.pool.fetchval("SELECT count(*) FROM holds") == 0
