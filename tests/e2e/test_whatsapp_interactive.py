"""Tap to choose on Meta (issue 19): a quote's options go out as an interactive list, a
question's single reading and the payment link's cancellation as reply buttons; a tap is
read by its id (never its title), and a tap on an earlier list gets the current options
instead of booking the old one. Typing still works (and is all Evolution has)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from app.conversations import replies
from app.dev.fake_graph import tap_envelope
from tests.e2e.conftest import Stack
from tests.e2e.test_whatsapp_conversations import (
    PHONE_NUMBER_ID,
    ask,
    conversation,
    day,
    sent_to,
    settled,
)
from tests.e2e.test_whatsapp_conversations import (
    replies as replies_to,
)
from tests.e2e.test_whatsapp_understanding import today_at_the_inn
from tests.inventory.conftest import make_calendar

GUEST = "5548991238001"


async def two_rooms(stack: Stack) -> dt.date:
    """'std' R$300 and 'lux' R$500 a night (2 guests each) from today on; returns today."""
    today = today_at_the_inn()
    async with stack.pool.acquire() as conn:
        await make_calendar(
            conn, [("std", 2, 2, 30000), ("lux", 2, 1, 50000)], start=today, days=40
        )
    return today


def last_sent(stack: Stack) -> dict[str, Any]:
    return [m for m in stack.graph.sent if m["to"] == GUEST][-1]


async def tap(stack: Stack, reply_id: str, title: str, kind: str = "list_reply") -> str:
    """Tap a row or button; returns the last of the replies the tap gets."""
    before = len(sent_to(stack, GUEST))
    envelope = tap_envelope(PHONE_NUMBER_ID, GUEST, reply_id, title, kind=kind)
    response = await stack.post_whatsapp(envelope)
    assert response.status_code == 200, response.text
    await settled(stack)
    return (await replies_to(stack, GUEST, before + 1))[-1]


async def quoted(stack: Stack, checkin: dt.date, nights: int = 2) -> list[tuple[str, str]]:
    """Ask for a stay for 2; returns the quote list's rows (id, title)."""
    text = f"quarto de {day(checkin)} a {day(checkin, nights)} para 2 pessoas"
    quote = await ask(stack, GUEST, text)
    assert quote.startswith("Para 2 pessoas"), quote
    sent = last_sent(stack)
    assert sent["interactive"] == "list" and sent["text"] == quote
    return [tuple(choice) for choice in sent["choices"]]  # type: ignore[misc]


async def holds(stack: Stack) -> list[dict[str, Any]]:
    rows = await stack.pool.fetch(
        "SELECT h.id, h.status, h.checkin, r.code FROM holds h"
        " JOIN hold_units u ON u.hold_id = h.id JOIN room_types r ON r.id = u.room_type_id"
    )
    return [dict(r) for r in rows]


async def test_a_tapped_row_books_its_option_and_the_cancel_button_cancels(
    stack: Stack, all_logs: pytest.LogCaptureFixture
) -> None:
    today = await two_rooms(stack)
    rows = await quoted(stack, today + dt.timedelta(days=5))
    assert len(rows) == 2
    assert all(id_.startswith("q:") and id_.endswith(f":{n}") for n, (id_, _) in enumerate(rows, 1))
    assert all(len(title) <= 24 for _, title in rows)
    second_id, second_title = rows[1]
    # The title is not what is read: a tap carrying row 2's id books option 2 whatever
    # its title says.
    link = await tap(stack, second_id, "qualquer título")
    assert "checkout.stripe.com" in link and second_title in link
    [hold] = await holds(stack)
    options = {title: code for title, code in (("Std", "std"), ("Lux", "lux"))}
    assert hold["code"] == options.get(second_title, hold["code"]) and hold["status"] == "active"

    sent = last_sent(stack)
    assert sent["interactive"] == "button"
    [(cancel_id, cancel_title)] = sent["choices"]
    assert cancel_id == f"h:{hold['id']}:cancel" and cancel_title == "Cancelar"
    answer = await tap(stack, cancel_id, cancel_title, kind="button_reply")
    assert answer == replies.render("hold_cancelled", "pt")
    [hold] = await holds(stack)
    assert hold["status"] == "cancelled"
    # Tapped again (a replay, or a second tap): nothing more to cancel, nothing else done.
    again = await tap(stack, cancel_id, cancel_title, kind="button_reply")
    assert again == replies.render("nothing_to_cancel", "pt")
    logged = "".join(r.getMessage() + str(r.__dict__) for r in all_logs.records)
    assert GUEST not in logged and GUEST[2:] not in logged and "quarto de" not in logged


async def test_a_row_of_an_earlier_list_gets_the_current_options_and_books_nothing(
    stack: Stack,
) -> None:
    today = await two_rooms(stack)
    first = await quoted(stack, today + dt.timedelta(days=5))
    current = await quoted(stack, today + dt.timedelta(days=12), nights=3)
    assert first[0][0] != current[0][0]  # each quote's rows carry its own id
    stale, requote = (await tap(stack, first[0][0], first[0][1])).split("\n", 1)
    assert stale == replies.render("stale_options", "pt")
    later = today + dt.timedelta(days=12)
    assert requote.startswith(f"Para 2 pessoas, de {day(later)} a {day(later, 3)}"), requote
    assert await holds(stack) == []
    # The list sent again is the current stay's: its rows book it.
    rows = [tuple(c) for c in last_sent(stack)["choices"]]
    link = await tap(stack, rows[0][0], rows[0][1])
    assert "checkout.stripe.com" in link and day(later) in link
    [hold] = await holds(stack)
    assert hold["checkin"] == later


async def test_yes_to_a_holidays_suggested_stay_is_a_button(stack: Stack) -> None:
    today = await two_rooms(stack)
    offer = await ask(stack, GUEST, "vocês têm vaga no natal? somos 2")
    assert offer.startswith("Para o Natal") or "Natal" in offer, offer
    sent = last_sent(stack)
    assert sent["interactive"] == "button"
    (yes_id, yes), (other_id, other) = sent["choices"]
    assert (yes, other) == ("Sim", "Outras datas")
    assert yes_id.endswith(":1") and other_id.endswith(":other")
    quote = await tap(stack, yes_id, yes, kind="button_reply")
    assert quote.startswith("Para 2 pessoas, de 24/12"), quote
    assert (await conversation(stack))["state"] == "quoted"
    assert today <= dt.date.fromisoformat((await conversation(stack))["context"]["stay"]["checkin"])


async def test_typing_the_number_still_books(stack: Stack) -> None:
    today = await two_rooms(stack)
    await quoted(stack, today + dt.timedelta(days=7))
    link = await ask(stack, GUEST, "quero o 1")
    assert "checkout.stripe.com" in link
    assert len(await holds(stack)) == 1
