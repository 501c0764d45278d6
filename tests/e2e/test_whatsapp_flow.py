"""A guest books on WhatsApp with every real part: signed Meta webhook → public app → local
Cloud Tasks → worker (OIDC) → Postgres → fake Stripe → fake Graph API."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
import uuid

import pytest
from pythonjsonlogger.json import JsonFormatter

from app.dev.fake_graph import inbound_envelope
from app.dev.fake_stripe import event
from app.inventory.holds import expire_due_holds
from app.tasks.outbox import relay_due
from tests.e2e.conftest import Stack, calendar, rows_as_text
from tests.inventory.conftest import Calendar, make_calendar
from tests.support import eventually

GUEST = "5511999990000"


async def say(stack: Stack, text: str, sender: str = GUEST) -> str:
    """Post the guest's text as Meta would; returns its message id."""
    message_id = f"wamid.HBgN{uuid.uuid4().hex.upper()}=="
    response = await stack.post_whatsapp(
        inbound_envelope("pn-test-inn", sender, text, message_id=message_id)
    )
    assert response.status_code == 200, response.text
    return message_id


async def replies(stack: Stack, count: int, to: str = GUEST) -> list[str]:
    """Wait until ``count`` replies reached the guest; returns their texts."""

    async def sent() -> list[str]:
        texts = [m["text"] for m in stack.graph.sent if m["to"] == to]
        return texts if len(texts) >= count else []

    return await eventually(sent)


async def test_pt_guest_books_and_pays(stack: Stack) -> None:
    cal = await calendar(stack)
    checkout = cal.start + dt.timedelta(days=2)
    await say(stack, f"Oi, tem quarto de {cal.start:%d/%m/%Y} a {checkout:%d/%m/%Y}, 2 pessoas")
    quote = (await replies(stack, 1))[0]
    assert "1. Std" in quote and "R$ 600,00" in quote

    await say(stack, "quero o 1")
    link = (await replies(stack, 2))[1]
    url = re.search(r"https://checkout\.stripe\.com/c/pay/(cs_\w+)", link)
    assert url is not None

    session = stack.stripe.complete(url.group(1))
    assert (await stack.post_event(event("checkout.session.completed", session))).status_code == 200
    confirmation = (await replies(stack, 3))[2]
    async with stack.pool.acquire() as conn:
        code = await conn.fetchval("SELECT code FROM reservations")
    assert code in confirmation


async def _setup(stack: Stack, rooms: list[tuple[str, int, int, int]] | None = None) -> Calendar:
    async with stack.pool.acquire() as conn:
        return await make_calendar(conn, rooms or [("std", 2, 1, 30000)], days=20)


def _day(cal: Calendar, offset: int) -> str:
    return f"{cal.start + dt.timedelta(days=offset):%d/%m/%Y}"


async def _pay(stack: Stack, link: str) -> None:
    session = re.search(r"cs_\w+", link)
    assert session is not None
    paid = stack.stripe.complete(session.group(0))
    assert (await stack.post_event(event("checkout.session.completed", paid))).status_code == 200


async def _settled(stack: Stack) -> None:
    """Every task the conversation produced has run to a 2xx (none left to retry)."""

    async def idle() -> bool:
        done = {d.task for d in stack.emulator.deliveries if d.status and d.status < 300}
        due = [
            name.rsplit("/", 1)[-1]
            for name, task in stack.emulator.tasks.items()
            if task.schedule_time.timestamp() <= time.time()  # not the expire-<hold> ones
        ]
        return all(name in done for name in due)

    await eventually(idle)


@pytest.mark.parametrize(
    ("sender", "greeting", "ask", "confirm", "words"),
    [
        ("5511900000001", "oi", "de {0} a {1}, 2 pessoas", "sim", ("Olá", "Pré-reserva", "Código")),
        (
            "5491100000002",
            "Hola",
            "¿tienen habitación del {0} al {1} para 2 personas?",
            "sí, reservar",
            ("Hola", "Pre-reserva", "Código"),
        ),
        (
            "15550000003",
            "Hi there",
            "do you have a room from {0} to {1} for 2 people?",
            "yes please book it",
            ("Hi!", "held", "Code"),
        ),
    ],
)
async def test_greeting_to_confirmation_in_the_guests_language(
    stack: Stack, sender: str, greeting: str, ask: str, confirm: str, words: tuple[str, ...]
) -> None:
    cal = await _setup(stack)
    # English numeric dates are month/day when unambiguous; the day names the month.
    first, last = (
        (f"{cal.start:%B} 3 2031", f"{cal.start:%B} 5 2031")
        if sender.startswith("1")
        else (_day(cal, 2), _day(cal, 4))
    )
    await say(stack, greeting, sender)
    assert words[0] in (await replies(stack, 1, sender))[0]
    await say(stack, ask.format(first, last), sender)
    assert "1. Std" in (await replies(stack, 2, sender))[1]
    await say(stack, confirm, sender)
    link = (await replies(stack, 3, sender))[2]
    assert words[1] in link
    await _pay(stack, link)
    confirmation = (await replies(stack, 4, sender))[3]
    code = await stack.pool.fetchval("SELECT code FROM reservations")
    assert words[2] in confirmation and code in confirmation
    hold = await stack.pool.fetchrow("SELECT checkin, checkout FROM holds")
    assert (hold["checkin"], hold["checkout"]) == (
        cal.start + dt.timedelta(days=2),
        cal.start + dt.timedelta(days=4),
    )


async def test_choice_by_number_or_name(stack: Stack) -> None:
    cal = await _setup(stack, [("std", 2, 1, 30000), ("lux", 2, 1, 50000)])
    await say(stack, f"de {_day(cal, 0)} a {_day(cal, 2)}, casal")
    quote = (await replies(stack, 1))[0]
    assert "1. Std" in quote and "2. Lux" in quote
    await say(stack, "quero a lux")
    assert "Lux" in (await replies(stack, 2))[1]
    chosen = await stack.pool.fetchval(
        "SELECT DISTINCT rt.code FROM hold_nights n JOIN room_types rt ON rt.id = n.room_type_id"
    )
    assert chosen == "lux"


async def test_full_dates_get_the_nearest_alternatives(stack: Stack) -> None:
    cal = await _setup(stack)
    await stack.pool.execute(
        "UPDATE ari_days SET stop_sell = true WHERE date BETWEEN $1 AND $2",
        cal.start + dt.timedelta(days=5),
        cal.start + dt.timedelta(days=6),
    )
    await say(stack, f"de {_day(cal, 5)} a {_day(cal, 7)}, 2 pessoas")
    answer = (await replies(stack, 1))[0]
    assert "Não temos" in answer
    assert f"{_day(cal, 7)} a {_day(cal, 9)} (2 noites)" in answer  # the first free stay after
    assert f"{_day(cal, 3)} a {_day(cal, 5)} (2 noites)" in answer  # and before
    assert await stack.pool.fetchval("SELECT count(*) FROM holds") == 0


async def test_missing_details_are_asked_for(stack: Stack) -> None:
    cal = await _setup(stack)
    await say(stack, "qual o valor da diária?")
    assert "Para quais datas" in (await replies(stack, 1))[0]
    await say(stack, f"de {_day(cal, 0)} a {_day(cal, 2)}")
    assert "Quantas pessoas" in (await replies(stack, 2))[1]
    await say(stack, "2")
    assert "1. Std" in (await replies(stack, 3))[2]
    await say(stack, "blá blá")
    assert "Posso ver disponibilidade" in (await replies(stack, 4))[3]  # help, never silence


async def _held(stack: Stack, cal: Calendar, offset: int = 0) -> str:
    await say(stack, f"de {_day(cal, offset)} a {_day(cal, offset + 2)}, 2 pessoas")
    count = len(await replies(stack, 1))
    await replies(stack, count)
    await say(stack, "sim")
    return (await replies(stack, count + 1))[count]


async def test_expired_hold_is_announced_and_can_be_quoted_again(stack: Stack) -> None:
    cal = await _setup(stack)
    await _held(stack, cal)
    await stack.pool.execute(
        "UPDATE holds SET expires_at = now() - interval '1 second',"
        " created_at = now() - interval '1 hour'"
    )
    async with stack.pool.acquire() as conn:
        assert await expire_due_holds(conn, 10)
    await relay_due(stack.pool, stack.queue)
    notice = (await replies(stack, 3))[2]
    assert "expirou" in notice
    assert await stack.pool.fetchval("SELECT sum(inv_held) FROM ari_days") == 0
    await say(stack, "sim")
    assert "1. Std" in (await replies(stack, 4))[3]


async def test_cancel_releases_the_hold_once(stack: Stack) -> None:
    cal = await _setup(stack)
    await _held(stack, cal)
    await say(stack, "quero cancelar")
    assert "cancelei" in (await replies(stack, 3))[2]
    await say(stack, "quero cancelar")
    assert "nenhuma pré-reserva" in (await replies(stack, 4))[3]
    await _settled(stack)
    assert len(await replies(stack, 4)) == 4  # no "expired" notice for the cancelled hold
    assert await stack.pool.fetchval("SELECT status FROM holds") == "cancelled"
    assert await stack.pool.fetchval("SELECT sum(inv_held) FROM ari_days") == 0


async def test_a_second_confirmation_replaces_the_first_hold(stack: Stack) -> None:
    cal = await _setup(stack)
    await _held(stack, cal, 0)
    await _held(stack, cal, 4)
    await _settled(stack)
    holds = await stack.pool.fetch(
        "SELECT status, cancel_reason, checkin FROM holds ORDER BY checkin"
    )
    assert [(h["status"], h["cancel_reason"]) for h in holds] == [
        ("cancelled", "replaced"),
        ("active", None),
    ]
    held = await stack.pool.fetch("SELECT date FROM ari_days WHERE inv_held > 0 ORDER BY date")
    assert [r["date"] for r in held] == [cal.start + dt.timedelta(days=d) for d in (4, 5)]
    assert len(await replies(stack, 4)) == 4  # no notice about the replaced hold


async def test_same_message_fifty_times_makes_one_hold_and_one_reply(stack: Stack) -> None:
    cal = await _setup(stack)
    await say(stack, f"de {_day(cal, 0)} a {_day(cal, 2)}, 2 pessoas")
    await replies(stack, 1)
    envelope = inbound_envelope("pn-test-inn", GUEST, "sim", message_id="wamid.SAME==")
    answers = await asyncio.gather(*(stack.post_whatsapp(envelope) for _ in range(50)))
    assert {a.status_code for a in answers} == {200}
    await replies(stack, 2)
    await _settled(stack)
    assert len(await replies(stack, 2)) == 2
    counts = await stack.pool.fetchrow(
        "SELECT (SELECT count(*) FROM holds) AS holds,"
        " (SELECT count(*) FROM payments) AS sessions,"
        " (SELECT count(*) FROM messages WHERE direction = 'in') AS inbound,"
        " (SELECT count(*) FROM processed_events WHERE source = 'whatsapp') AS receipts"
    )
    assert tuple(counts) == (1, 1, 2, 2)


async def test_no_guest_data_in_logs_rows_or_tasks(
    stack: Stack, all_logs: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """A whole conversation to confirmation: the number, the profile name and every text
    the guest sent appear in no log record, no output, no task body and no row as text."""
    cal = await _setup(stack)
    said = [f"Oi, sou a Joana, tem quarto de {_day(cal, 0)} a {_day(cal, 2)} p/ 2 pessoas?", "sim"]
    for n, text in enumerate(said, start=1):
        envelope = inbound_envelope("pn-test-inn", GUEST, text, name="Joana Canary Pereira")
        assert (await stack.post_whatsapp(envelope)).status_code == 200
        link = (await replies(stack, n))[-1]
    await _pay(stack, link)
    await replies(stack, 3)
    await _settled(stack)

    forbidden = [GUEST, f"+{GUEST}", GUEST[-8:], "Joana Canary Pereira", *said]
    formatter = JsonFormatter()
    logged = [f"{formatter.format(r)} {vars(r)!r}" for r in all_logs.records]
    assert any("whatsapp_message_answered" in line for line in logged)
    out, err = capfd.readouterr()
    bodies = [t.http_request.body.decode() for t in stack.emulator.tasks.values()]
    rows = await rows_as_text(stack)
    for place in [*logged, out, err, *bodies, rows]:
        for secret in forbidden:
            assert secret not in place


async def test_a_declined_delayed_payment_is_explained(stack: Stack) -> None:
    cal = await _setup(stack)
    link = await _held(stack, cal)
    session = re.search(r"cs_\w+", link)
    assert session is not None
    unpaid = stack.stripe.complete(session.group(0), "unpaid")
    for event_type in ("checkout.session.completed", "checkout.session.async_payment_failed"):
        assert (await stack.post_event(event(event_type, unpaid))).status_code == 200
    notice = (await replies(stack, 3))[2]
    assert "não foi aprovado" in notice and "expirou" not in notice
    assert await stack.pool.fetchval("SELECT sum(inv_held) FROM ari_days") == 0
