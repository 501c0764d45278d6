"""The conversation proposes (issue 20): a stay a rule refuses is explained in the guest's
language and the nearest stays every rule allows are offered, each one number from its
hold; a party too large for one room gets rooms that fit it together; children's ages are
asked once when they change the price; every quote carries the cancellation policy."""

from __future__ import annotations

import asyncio
import datetime as dt
import re

import pytest

from app.conversations import replies
from tests.e2e.conftest import Stack
from tests.e2e.test_whatsapp_conversations import (
    ask,
    conversation,
    held_nights_match_active_holds,
    numbered,
    say,
    sent_to,
    settled,
)
from tests.e2e.test_whatsapp_conversations import (
    replies as replies_to,
)
from tests.inventory.conftest import START, make_calendar

ARRIVAL = START + dt.timedelta(days=9)  # 10/03/2031, for two nights
ASK = {
    "pt": "Tem quarto de 10/03/2031 a 12/03/2031 para 2 pessoas?",
    "es": "¿Tienen habitación del 10/03/2031 al 12/03/2031 para 2 personas?",
    "en": "Do you have a room from March 10 2031 to March 12 2031 for 2 people?",
}
# Each rule as the ari_days change that sets it on the stay asked for, and what the reply
# says of it in each language.
RULES = {
    "min_stay": (
        "UPDATE ari_days SET min_stay = 4 WHERE date = '2031-03-10'",
        {
            "pt": "Chegando em 10/03/2031, a estadia mínima é de 4 noites.",
            "es": "Llegando el 10/03/2031, la estadía mínima es de 4 noches.",
            "en": "Arriving March 10, 2031, the minimum stay is 4 nights.",
        },
    ),
    "max_stay": (
        "UPDATE ari_days SET max_stay = 1 WHERE date = '2031-03-10'",
        {
            "pt": "Chegando em 10/03/2031, a estadia máxima é de 1 noite.",
            "es": "Llegando el 10/03/2031, la estadía máxima es de 1 noche.",
            "en": "Arriving March 10, 2031, the maximum stay is 1 night.",
        },
    ),
    "closed_to_arrival": (
        "UPDATE ari_days SET closed_to_arrival = true WHERE date = '2031-03-10'",
        {
            "pt": "Não recebemos chegadas em 10/03/2031.",
            "es": "No recibimos llegadas el 10/03/2031.",
            "en": "We take no arrivals on March 10, 2031.",
        },
    ),
    "closed_to_departure": (
        "UPDATE ari_days SET closed_to_departure = true WHERE date = '2031-03-12'",
        {
            "pt": "Não há saídas em 12/03/2031.",
            "es": "No hay salidas el 12/03/2031.",
            "en": "There are no departures on March 12, 2031.",
        },
    ),
}
LINE = re.compile(r"^(\d)\. (\d\d/\d\d/\d{4}) a (\d\d/\d\d/\d{4}) \(\d+ noites?\), Std: total")


def _date(text: str) -> dt.date:
    return dt.datetime.strptime(text, "%d/%m/%Y").date()


@pytest.mark.parametrize("rule", RULES)
async def test_a_rule_is_explained_and_every_stay_offered_instead_books(
    stack: Stack, rule: str
) -> None:
    change, said = RULES[rule]
    async with stack.pool.acquire() as conn:
        await make_calendar(conn, [("std", 2, 3, 30000)], days=20)
        await conn.execute(change)
    answers = {}
    for n, lang in enumerate(("pt", "es", "en")):
        answers[lang] = await ask(stack, f"55119700010{n}", ASK[lang])
        assert said[lang] in answers[lang], answers[lang]
    answer = answers["pt"]
    assert answer.startswith("Não consigo reservar de 10/03/2031 a 12/03/2031"), answer
    offered = [LINE.match(line) for line in numbered(answer)]
    assert 1 <= len(offered) <= 3 and all(offered), answer
    for n, found in enumerate(offered):
        assert found is not None
        guest = f"55119700012{n}"
        assert (await ask(stack, guest, ASK["pt"])) == answer  # the same proposal for each
        link = await ask(stack, guest, f"quero o {found.group(1)}")
        assert "checkout.stripe.com" in link, link
        hold = await stack.pool.fetchrow(
            "SELECT h.checkin, h.checkout FROM holds h JOIN conversations c"
            " ON c.id = h.conversation_id ORDER BY h.created_at DESC LIMIT 1"
        )
        assert (hold["checkin"], hold["checkout"]) == (_date(found.group(2)), _date(found.group(3)))
    await held_nights_match_active_holds(stack)


async def test_a_family_of_six_gets_two_rooms_held_as_one(stack: Stack) -> None:
    async with stack.pool.acquire() as conn:
        await make_calendar(conn, [("std", 3, 2, 30000)], days=20)
    guests = [f"55119700020{n:02d}" for n in range(20)]
    text = "Tem quarto de 10/03/2031 a 12/03/2031 para 6 pessoas?"
    quotes = await asyncio.gather(*(ask(stack, guest, text) for guest in guests))
    for quote in quotes:
        assert numbered(quote) == [
            "1. 2x Std (R$ 600,00 + R$ 600,00): R$ 600,00 por noite, total R$ 1.200,00"
        ], quote
    # Twenty families want the last pair at once: exactly one gets it, whole.
    before = {guest: len(sent_to(stack, guest)) for guest in guests}
    await asyncio.gather(*(say(stack, guest, "quero o 1") for guest in guests))
    answers = [(await replies_to(stack, g, before[g] + 1))[before[g]] for g in guests]
    assert sum("checkout.stripe.com" in a for a in answers) == 1, answers
    assert sum(a == replies.render("sold_out", "pt") for a in answers) == 19, answers
    units = await stack.pool.fetch(
        "SELECT h.status, u.adults, cardinality(u.children_ages) AS children FROM holds h"
        " JOIN hold_units u ON u.hold_id = h.id WHERE h.status = 'active'"
    )
    assert sorted(u["adults"] for u in units) == [3, 3]
    await settled(stack)
    held = await stack.pool.fetch(
        "SELECT date, inv_held, inv_total FROM ari_days WHERE date IN ('2031-03-10', '2031-03-11')"
    )
    assert [(h["inv_held"], h["inv_total"]) for h in held] == [(2, 2), (2, 2)]
    await held_nights_match_active_holds(stack)


async def test_children_without_ages_are_asked_once_and_priced(stack: Stack) -> None:
    async with stack.pool.acquire() as conn:
        cal = await make_calendar(conn, [("fam", 4, 1, 30000)], days=20)
        await conn.execute(
            "UPDATE room_types SET base_occupancy = 2 WHERE property_id = $1", cal.property.id
        )
        await conn.execute("UPDATE ari_days SET extra_adult_cents = 10000")
        await conn.executemany(
            "INSERT INTO child_rates (property_id, max_age, percent) VALUES ($1, $2, $3)",
            [(cal.property.id, 5, 0), (cal.property.id, 11, 50)],
        )
    guest = "5511970003001"
    text = "Tem quarto de 10/03/2031 a 12/03/2031 para 2 adultos e 2 crianças?"
    assert await ask(stack, guest, text) == replies.render("ask_ages", "pt")
    quote = await ask(stack, guest, "5 e 8")
    # 300 + the 5-year-old free + the 8-year-old at 50 % of the R$100 extra, two nights.
    assert "total R$ 700,00" in quote and "5 e 8 anos" in quote, quote
    # Asked once: new dates with the same children quote at once.
    again = await ask(stack, guest, "e de 14/03/2031 a 16/03/2031?")
    assert "total R$ 700,00" in again, again
    assert (await conversation(stack))["context"]["stay"]["children_ages"] == [5, 8]


async def test_every_quote_carries_the_cancellation_policy(stack: Stack) -> None:
    async with stack.pool.acquire() as conn:
        cal = await make_calendar(conn, [("std", 2, 3, 30000)], days=20)
        await conn.executemany(
            "INSERT INTO cancellation_tiers (property_id, days_before, refund_percent)"
            " VALUES ($1, $2, $3)",
            [(cal.property.id, 7, 100), (cal.property.id, 2, 50)],
        )
    policy = replies.policy_line([(7, 100), (2, 50)], "pt").strip()
    quote = await ask(stack, "5511970004001", ASK["pt"])
    assert quote.endswith(policy), quote
    await stack.pool.execute("UPDATE ari_days SET stop_sell = true WHERE date = '2031-03-10'")
    proposal = await ask(stack, "5511970004002", ASK["pt"])
    assert numbered(proposal) and proposal.endswith(policy), proposal
