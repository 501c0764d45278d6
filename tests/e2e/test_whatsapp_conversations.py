"""WhatsApp booking conversations end to end, one guest per test, every part real: signed
Meta webhook → public app → local Cloud Tasks → worker (OIDC) → Postgres → fake Stripe →
fake Graph API. Each test checks what the guest reads, in their language, and what the
database holds afterwards (holds, nights, conversation state), never sleeping to wait."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from pythonjsonlogger.orjson import OrjsonFormatter

from app.dev.fake_graph import inbound_envelope
from app.dev.fake_stripe import event
from app.pii import pii_keys
from app.tasks.catalog import CONVERSATION_NOTIFY
from tests.e2e.conftest import Stack, book, calendar, worker_task
from tests.inventory.conftest import Calendar, make_calendar
from tests.support import eventually

PHONE_NUMBER_ID = "pn-test-inn"
INN_TZ = ZoneInfo("America/Sao_Paulo")
LINK = re.compile(r"https://checkout\.stripe\.com/c/pay/(cs_\w+)")


# ---- helpers ------------------------------------------------------------------------------


def day(date: dt.date, offset: int = 0) -> str:
    """A date ``offset`` days after ``date`` as a Portuguese guest writes it: dd/mm/yyyy."""
    return f"{date + dt.timedelta(days=offset):%d/%m/%Y}"


def numbered(reply: str) -> list[str]:
    """The numbered option lines of a quote."""
    return [line for line in reply.splitlines() if re.match(r"\d+\. ", line)]


async def say(
    stack: Stack,
    guest: str,
    text: str,
    *,
    message_id: str | None = None,
    name: str = "Hóspede",
) -> str:
    """Post the guest's text as Meta would; returns its message id."""
    message_id = message_id or f"wamid.HBgN{uuid.uuid4().hex.upper()}=="
    envelope = inbound_envelope(PHONE_NUMBER_ID, guest, text, message_id=message_id, name=name)
    response = await stack.post_whatsapp(envelope)
    assert response.status_code == 200, response.text
    return message_id


def sent_to(stack: Stack, guest: str) -> list[str]:
    """Every text the fake Graph API has delivered to ``guest`` so far, in order."""
    return [m["text"] for m in stack.graph.sent if m["to"] == guest]


async def replies(stack: Stack, guest: str, count: int) -> list[str]:
    """Wait until at least ``count`` replies reached the guest; returns them all."""

    async def arrived() -> list[str]:
        texts = sent_to(stack, guest)
        return texts if len(texts) >= count else []

    return await eventually(arrived)


async def ask(stack: Stack, guest: str, text: str, **kwargs: Any) -> str:
    """Send ``text`` and return the one new reply it gets."""
    before = len(sent_to(stack, guest))
    await say(stack, guest, text, **kwargs)
    return (await replies(stack, guest, before + 1))[before]


async def settled(stack: Stack) -> None:
    """Nothing is left to happen: every outbox row was relayed, every reply sent, every
    inbound message answered and every due task answered 2xx (none waits for a retry).
    The expire-<hold> tasks scheduled for the holds' TTL are not due and do not count."""

    async def idle() -> bool:
        done = {d.task for d in stack.emulator.deliveries if d.status and d.status < 300}
        due = [
            name.rsplit("/", 1)[-1]
            for name, task in stack.emulator.tasks.items()
            if task.schedule_time.timestamp() <= time.time()
        ]
        pending = await stack.pool.fetchval(
            "SELECT (SELECT count(*) FROM outbox_events WHERE enqueued_at IS NULL)"
            " + (SELECT count(*) FROM messages WHERE direction = 'out' AND status = 'queued')"
            " + (SELECT count(*) FROM processed_events WHERE processed_at IS NULL)"
        )
        return pending == 0 and all(name in done for name in due)

    await eventually(idle)


def answered(stack: Stack, short_name: str) -> bool:
    """The task of that name was delivered to the worker and answered 2xx."""
    return any(
        d.task == short_name and d.status is not None and d.status < 300
        for d in stack.emulator.deliveries
    )


async def pay(stack: Stack, link: str) -> str:
    """The guest pays on the link's Checkout page; Stripe posts the completed event."""
    found = LINK.search(link)
    assert found is not None, link
    session = stack.stripe.complete(found.group(1))
    response = await stack.post_event(event("checkout.session.completed", session))
    assert response.status_code == 200, response.text
    return found.group(1)


async def conversation(stack: Stack) -> dict[str, Any]:
    """The test's one conversation row: id, state, language and context."""
    row = await stack.pool.fetchrow("SELECT id, state, language, context FROM conversations")
    assert row is not None
    return dict(row)


async def held_nights_match_active_holds(stack: Stack) -> None:
    """ari_days.inv_held is, night by night, exactly what the active holds own."""
    wrong = await stack.pool.fetch(
        "SELECT a.room_type_id, a.date, a.inv_held, coalesce(h.qty, 0) AS owned"
        " FROM ari_days a LEFT JOIN ("
        "   SELECT n.room_type_id, n.date, sum(n.qty) AS qty FROM hold_nights n"
        "   JOIN holds ON holds.id = n.hold_id AND holds.status = 'active'"
        "   GROUP BY n.room_type_id, n.date"
        " ) h ON h.room_type_id = a.room_type_id AND h.date = a.date"
        " WHERE a.inv_held <> coalesce(h.qty, 0)"
    )
    assert wrong == []


async def two_rooms(stack: Stack) -> Calendar:
    """'std' (2 guests, 2 rooms, R$300) and 'fam' (4 guests, 1 room, R$500), 20 nights."""
    async with stack.pool.acquire() as conn:
        return await make_calendar(conn, [("std", 2, 2, 30000), ("fam", 4, 1, 50000)], days=20)


async def with_link(stack: Stack, guest: str, cal: Calendar, first: int = 4) -> str:
    """Quote two nights from ``cal.start + first`` for 2 guests and confirm option 1;
    returns the payment link reply."""
    quote = await ask(
        stack,
        guest,
        f"Tem quarto de {day(cal.start, first)} a {day(cal.start, first + 2)} para 2 pessoas?",
    )
    assert "1. Std" in quote, quote
    link = await ask(stack, guest, "quero o 1")
    assert LINK.search(link) is not None, link
    return link


# ---- 1. the whole conversation in each language --------------------------------------------


@dataclass(frozen=True)
class Script:
    """One language's conversation and the words its replies must carry."""

    lang: str
    guest: str
    greeting: str
    question: str
    confirm: str
    nights: int
    greeted: str
    quoted: str
    line: str
    held: str
    deadline: str  # strftime format around the inn's local deadline
    confirmed: str
    code: str  # "{code}" is the reservation code
    stay: str


SCRIPTS = [
    Script(
        lang="pt",
        guest="5511970000101",
        greeting="oi",
        question="Tem quarto de 05/03/2031 a 07/03/2031 para 2 pessoas?",
        confirm="quero o 1",
        nights=2,
        greeted="Olá! Aqui é o atendimento da Pousada Teste.",
        quoted="Para 2 pessoas, de 05/03/2031 a 07/03/2031 (2 noites):",
        line="1. Std: R$ 300,00 por noite, total R$ 600,00",
        held="Pré-reserva feita: Std, 05/03/2031 a 07/03/2031, total R$ 600,00.",
        deadline="até %d/%m às %H:%M (horário da pousada)",
        confirmed="Pagamento recebido! Sua reserva está confirmada.",
        code="Código: {code}.",
        stay="05/03/2031 a 07/03/2031.",
    ),
    Script(
        lang="es",
        guest="5491170000102",
        greeting="hola",
        question="Hola, ¿tienen habitación del 05/03/2031 al 08/03/2031 para 2 personas?",
        confirm="sí, reservar",
        nights=3,
        greeted="¡Hola! Somos Pousada Teste.",
        quoted="Para 2 personas, del 05/03/2031 al 08/03/2031 (3 noches):",
        line="1. Std: R$ 300,00 por noche, total R$ 900,00",
        held="Pre-reserva hecha: Std, del 05/03/2031 al 08/03/2031, total R$ 900,00.",
        deadline="hasta el %d/%m a las %H:%M (hora de la posada)",
        confirmed="¡Pago recibido! Su reserva está confirmada.",
        code="Código: {code}.",
        stay="Del 05/03/2031 al 08/03/2031.",
    ),
    Script(
        lang="en",
        guest="15557000103",
        greeting="hi",
        question="Hi, do you have a room from March 5 2031 to March 7 2031 for 2 people?",
        confirm="yes please book it",
        nights=2,
        greeted="Hi! This is Pousada Teste.",
        quoted="For 2 guests, March 5, 2031 to March 7, 2031 (2 nights):",
        line="1. Std: R$ 300.00 per night, R$ 600.00 in total",
        held="Your room is held: Std, March 5, 2031 to March 7, 2031, R$ 600.00 in total.",
        deadline="by %m/%d at %I:%M %p (the inn's time)",
        confirmed="Payment received! Your booking is confirmed.",
        code="Code: {code}.",
        stay="March 5, 2031 to March 7, 2031.",
    ),
]


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.lang for s in SCRIPTS])
async def test_greeting_to_confirmed_booking_in_the_guests_language(
    stack: Stack, script: Script
) -> None:
    """Greeting → dates and guests → a numbered quote with nightly and total price →
    confirmation → a Stripe Checkout link with a payment deadline in the inn's local time
    → payment → the reservation code; every reply in the guest's language."""
    cal = await calendar(stack)
    guest = script.guest

    greeted = await ask(stack, guest, script.greeting)
    assert greeted.startswith(script.greeted), greeted

    quote = await ask(stack, guest, script.question)
    assert script.quoted in quote, quote
    assert numbered(quote) == [script.line], quote  # one room type, one numbered line
    assert (await conversation(stack))["state"] == "quoted"

    link = await ask(stack, guest, script.confirm)
    assert script.held in link, link
    found = LINK.search(link)
    assert found is not None, link
    hold = await stack.pool.fetchrow(
        "SELECT id, checkin, checkout, guests, total_cents, expires_at, status FROM holds"
    )
    assert hold is not None and hold["status"] == "active"
    assert (hold["checkin"], hold["checkout"], hold["guests"]) == (
        cal.start + dt.timedelta(days=4),
        cal.start + dt.timedelta(days=4 + script.nights),
        2,
    )
    assert hold["total_cents"] == 30000 * script.nights
    session = stack.stripe.sessions[found.group(1)]
    # The deadline is when the link closes, in the inn's local time (UTC-3).
    closes = dt.datetime.fromtimestamp(session["expires_at"], dt.UTC).astimezone(INN_TZ)
    assert closes.strftime(script.deadline) in link, link
    assert session["client_reference_id"] == str(hold["id"])
    assert session["amount_total"] == hold["total_cents"]
    state = await conversation(stack)
    assert state["state"] == "awaiting_payment"
    assert state["context"]["hold_id"] == str(hold["id"])

    await pay(stack, link)
    confirmation = (await replies(stack, guest, 4))[3]
    code = await stack.pool.fetchval("SELECT code FROM reservations WHERE hold_id = $1", hold["id"])
    assert code is not None
    assert confirmation.startswith(script.confirmed), confirmation
    assert script.code.format(code=code) in confirmation and script.stay in confirmation

    await settled(stack)
    assert len(sent_to(stack, guest)) == 4
    state = await conversation(stack)
    assert (state["state"], state["language"]) == ("booked", script.lang)
    assert state["context"].get("reservation_code") == code
    assert "hold_id" not in state["context"]
    assert await stack.pool.fetchval("SELECT status FROM holds") == "converted"


# ---- 2. choosing among two room types --------------------------------------------------------


@pytest.mark.parametrize(
    ("guest", "choice", "room", "held"),
    [
        (
            "5511970000201",
            "quero o 2",
            "fam",
            "Pré-reserva feita: Fam, 05/03/2031 a 07/03/2031, total R$ 1.000,00.",
        ),
        (
            "5511970000202",
            "quero o 1",
            "std",
            "Pré-reserva feita: Std, 05/03/2031 a 07/03/2031, total R$ 600,00.",
        ),
        ("5511970000203", "fico com o Fam", "fam", "Pré-reserva feita: Fam,"),
        ("5511970000204", "pode ser o Std", "std", "Pré-reserva feita: Std,"),
    ],
    ids=["number-2", "number-1", "name-fam", "name-std"],
)
async def test_the_chosen_line_is_the_room_held(
    stack: Stack, guest: str, choice: str, room: str, held: str
) -> None:
    """With two room types quoted (cheapest first), an answer by line number or by room
    name holds that line's room type, night by night, and the link names it."""
    cal = await two_rooms(stack)
    quote = await ask(
        stack, guest, f"Tem quarto de {day(cal.start, 4)} a {day(cal.start, 6)} para 2 pessoas?"
    )
    assert numbered(quote) == [
        "1. Std: R$ 300,00 por noite, total R$ 600,00",
        "2. Fam: R$ 500,00 por noite, total R$ 1.000,00",
    ], quote

    link = await ask(stack, guest, choice)
    assert held in link and LINK.search(link) is not None, link
    nights = await stack.pool.fetch(
        "SELECT rt.code, n.date, n.qty FROM hold_nights n"
        " JOIN room_types rt ON rt.id = n.room_type_id ORDER BY n.date"
    )
    assert [(n["code"], n["date"], n["qty"]) for n in nights] == [
        (room, cal.start + dt.timedelta(days=4), 1),
        (room, cal.start + dt.timedelta(days=5), 1),
    ]
    await held_nights_match_active_holds(stack)


# ---- 3. nothing free: nearby dates instead ----------------------------------------------------


async def test_stop_sell_dates_get_nearby_alternatives(stack: Stack) -> None:
    """Nights closed to sale: the reply says there is nothing for those dates and lists
    the nearest stays of the same length that are free, in date order; nothing is held."""
    guest = "5511970000301"
    cal = await two_rooms(stack)
    await stack.pool.execute(
        "UPDATE ari_days SET stop_sell = true WHERE property_id = $1 AND date IN ($2, $3)",
        cal.property.id,
        dt.date(2031, 3, 10),
        dt.date(2031, 3, 11),
    )
    answer = await ask(stack, guest, "Tem quarto de 10/03/2031 a 12/03/2031 para 2 pessoas?")
    assert answer.startswith(
        "Não temos quartos livres para 2 pessoas de 10/03/2031 a 12/03/2031."
    ), answer
    assert numbered(answer) == [
        "1. 08/03/2031 a 10/03/2031 (2 noites), Std: total R$ 600,00",
        "2. 12/03/2031 a 14/03/2031 (2 noites), Std: total R$ 600,00",
        "3. 13/03/2031 a 15/03/2031 (2 noites), Std: total R$ 600,00",
    ], answer
    assert await stack.pool.fetchval("SELECT count(*) FROM holds") == 0
    state = await conversation(stack)
    assert state["state"] == "quoted" and len(state["context"]["options"]) == 3

    # The guest takes one of them by its number: held for those dates.
    link = await ask(stack, guest, "quero o 2")
    assert "checkout.stripe.com" in link and "12/03/2031" in link, link
    assert await stack.pool.fetchval("SELECT checkin FROM holds") == dt.date(2031, 3, 12)


async def test_dates_held_by_someone_else_get_nearby_alternatives(stack: Stack) -> None:
    """The only room is held by another booking on the nights asked for: no quote, and the
    nearby free stays are offered (one of them is the stay right after the other hold)."""
    guest = "5511970000302"
    cal = await calendar(stack, units=1)
    await book(stack, cal, first=4, nights=2)  # another guest holds 05/03 and 06/03
    answer = await ask(stack, guest, "Tem quarto de 05/03/2031 a 07/03/2031 para 2 pessoas?")
    assert "Não temos quartos livres" in answer and "1. Std:" not in answer, answer
    assert "07/03/2031 a 09/03/2031 (2 noites), Std: total R$ 600,00" in answer, answer
    assert "03/03/2031 a 05/03/2031 (2 noites), Std: total R$ 600,00" in answer, answer
    assert "06/03/2031 a" not in answer and "04/03/2031 a" not in answer, answer
    assert await stack.pool.fetchval("SELECT count(*) FROM holds") == 1


# ---- 4. what is missing is asked for ---------------------------------------------------------


async def test_missing_dates_and_guests_are_asked_for(stack: Stack) -> None:
    """A price question without dates asks for dates (no quote); dates without guests ask
    how many; a bare "2" then answers that question and gets the quote."""
    guest = "5511970000401"
    await calendar(stack)
    first = await ask(stack, guest, "qual o valor da diária?")
    assert first.startswith("Para quais datas?"), first
    assert "R$" not in first

    second = await ask(stack, guest, "de 05/03/2031 a 07/03/2031")
    assert second == "De 05/03/2031 a 07/03/2031. Quantas pessoas?", second
    assert (await conversation(stack))["context"]["stay"] == {
        "checkin": "2031-03-05",
        "checkout": "2031-03-07",
    }

    quote = await ask(stack, guest, "2")
    assert "Para 2 pessoas, de 05/03/2031 a 07/03/2031 (2 noites):" in quote, quote
    assert "1. Std: R$ 300,00 por noite, total R$ 600,00" in quote, quote
    assert (await conversation(stack))["state"] == "quoted"
    assert await stack.pool.fetchval("SELECT count(*) FROM holds") == 0


# ---- 5. a hold that expires is announced --------------------------------------------------------


async def test_expired_hold_is_announced_and_a_yes_quotes_again(stack: Stack) -> None:
    """The sweep (the worker's /tasks/holds/sweep, OIDC-authenticated) expires an overdue
    hold: its nights are free again, the guest is told it expired and offered a new quote,
    and "sim" gets a fresh quote that can be booked again."""
    guest = "5511970000501"
    cal = await calendar(stack)
    await with_link(stack, guest, cal)
    hold_id = await stack.pool.fetchval("SELECT id FROM holds")
    assert await stack.pool.fetchval("SELECT sum(inv_held) FROM ari_days") == 2
    await stack.pool.execute(
        "UPDATE holds SET created_at = now() - interval '1 hour',"
        " expires_at = now() - interval '1 second' WHERE id = $1",
        hold_id,
    )

    assert await worker_task(stack, "/tasks/holds/sweep", {}) == {
        "outcome": "swept",
        "expired": 1,
        "continued": False,
    }
    notice = (await replies(stack, guest, 3))[2]
    assert notice == (
        "Sua pré-reserva de 05/03/2031 a 07/03/2031 expirou sem pagamento e os quartos foram "
        "liberados. Quer que eu faça uma nova cotação? Responda sim."
    ), notice
    status = await stack.pool.fetchrow("SELECT status, cancel_reason FROM holds")
    assert tuple(status) == ("expired", "sweep")
    assert await stack.pool.fetchval("SELECT sum(inv_held) FROM ari_days") == 0
    state = await conversation(stack)
    assert state["state"] == "requote" and "hold_id" not in state["context"]

    quote = await ask(stack, guest, "sim")
    assert "de 05/03/2031 a 07/03/2031" in quote and "1. Std: R$ 300,00" in quote, quote
    link = await ask(stack, guest, "quero o 1")
    assert LINK.search(link) is not None, link
    assert await stack.pool.fetchval("SELECT count(*) FROM holds WHERE status = 'active'") == 1
    await held_nights_match_active_holds(stack)
    await settled(stack)
    assert len(sent_to(stack, guest)) == 5


# ---- 6. the guest cancels ---------------------------------------------------------------------


async def test_cancel_releases_the_hold_and_says_so_once(stack: Stack) -> None:
    """ "quero cancelar" after the link cancels the hold and frees its nights; a second one
    finds nothing to cancel; the hold's own expiry task, when it fires later, changes
    nothing; and no "expired" notice ever reaches the guest."""
    guest = "5511970000601"
    cal = await calendar(stack)
    await with_link(stack, guest, cal)
    hold_id = await stack.pool.fetchval("SELECT id FROM holds")

    cancelled = await ask(stack, guest, "quero cancelar")
    assert cancelled.startswith("Pronto, cancelei sua pré-reserva."), cancelled
    status = await stack.pool.fetchrow("SELECT status, cancel_reason FROM holds")
    assert tuple(status) == ("cancelled", "guest_request")
    assert await stack.pool.fetchval("SELECT sum(inv_held) FROM ari_days") == 0

    again = await ask(stack, guest, "quero cancelar")
    assert again == "Você não tem nenhuma pré-reserva pendente para cancelar.", again

    # The expire-<hold> task scheduled at the hold's TTL fires (brought forward here).
    await stack.pool.execute(
        "UPDATE holds SET expires_at = now() - interval '1 second' WHERE id = $1", hold_id
    )
    expired = await worker_task(stack, "/tasks/holds/expire", {"hold_id": str(hold_id)})
    assert expired == {"outcome": "noop"}
    assert (await worker_task(stack, "/tasks/holds/sweep", {}))["expired"] == 0

    await settled(stack)
    assert answered(stack, CONVERSATION_NOTIFY.task_name(f"{hold_id}:hold.cancelled"))  # silently
    texts = sent_to(stack, guest)
    assert len(texts) == 4, texts
    assert not any("expirou" in text for text in texts)
    assert await stack.pool.fetchval("SELECT sum(inv_held) FROM ari_days") == 0
    state = await conversation(stack)
    assert state["state"] == "collecting" and "hold_id" not in state["context"]


# ---- 7. a second "yes" replaces the first hold ------------------------------------------------


async def test_a_second_confirmation_replaces_the_first_hold(stack: Stack) -> None:
    """Quote → yes → link A; new dates → quote → yes → link B: hold A is cancelled as
    'replaced', one hold stays active, the calendar holds exactly B's nights, and the guest
    hears nothing about A's end."""
    guest = "5511970000701"
    cal = await calendar(stack)
    link_a = await with_link(stack, guest, cal, first=1)
    link_b = await with_link(stack, guest, cal, first=5)
    session_a, session_b = (LINK.search(link).group(1) for link in (link_a, link_b))  # type: ignore[union-attr]
    assert session_a != session_b
    assert "02/03/2031 a 04/03/2031" in link_a and "06/03/2031 a 08/03/2031" in link_b

    await settled(stack)
    holds = await stack.pool.fetch(
        "SELECT id, status, cancel_reason, checkin, conversation_id FROM holds ORDER BY checkin"
    )
    state = await conversation(stack)
    assert [(h["status"], h["cancel_reason"], h["checkin"]) for h in holds] == [
        ("cancelled", "replaced", dt.date(2031, 3, 2)),
        ("active", None, dt.date(2031, 3, 6)),
    ]
    assert {h["conversation_id"] for h in holds} == {state["id"]}
    assert state["state"] == "awaiting_payment"
    assert state["context"]["hold_id"] == str(holds[1]["id"])
    assert stack.stripe.sessions[session_b]["client_reference_id"] == str(holds[1]["id"])
    held = await stack.pool.fetch(
        "SELECT date, inv_held FROM ari_days WHERE inv_held <> 0 ORDER BY date"
    )
    assert [(r["date"], r["inv_held"]) for r in held] == [
        (dt.date(2031, 3, 6), 1),
        (dt.date(2031, 3, 7), 1),
    ]
    await held_nights_match_active_holds(stack)
    replaced = holds[0]["id"]
    assert answered(stack, CONVERSATION_NOTIFY.task_name(f"{replaced}:hold.cancelled"))  # silently
    texts = sent_to(stack, guest)
    assert len(texts) == 4, texts
    assert not any("expirou" in text for text in texts)


# ---- 8. Meta delivers the same message many times ---------------------------------------------


async def test_the_same_yes_fifty_times_holds_and_answers_once(stack: Stack) -> None:
    """The confirming message delivered 50 times at once (one message id): one hold, one
    Checkout Session, one receipt, one inbound row and one link reply."""
    guest = "5511970000801"
    cal = await calendar(stack)
    await ask(
        stack, guest, f"Tem quarto de {day(cal.start, 4)} a {day(cal.start, 6)} para 2 pessoas?"
    )
    envelope = inbound_envelope(PHONE_NUMBER_ID, guest, "quero o 1", message_id="wamid.DUP50==")
    body = orjson.dumps(envelope)
    answers = await asyncio.gather(*(stack.post_whatsapp(body) for _ in range(50)))
    assert {a.status_code for a in answers} == {200}

    link = (await replies(stack, guest, 2))[1]
    assert LINK.search(link) is not None, link
    await settled(stack)
    assert len(sent_to(stack, guest)) == 2
    assert len(stack.stripe.sessions) == 1
    counts = await stack.pool.fetchrow(
        "SELECT (SELECT count(*) FROM holds) AS holds,"
        " (SELECT count(*) FROM payments) AS payments,"
        " (SELECT count(*) FROM processed_events WHERE external_id = 'wamid.DUP50==') AS receipts,"
        " (SELECT count(*) FROM messages WHERE provider_message_id = 'wamid.DUP50==') AS inbound,"
        " (SELECT count(*) FROM messages WHERE direction = 'out') AS outbound"
    )
    assert dict(counts) == {"holds": 1, "payments": 1, "receipts": 1, "inbound": 1, "outbound": 2}
    assert await stack.pool.fetchval("SELECT sum(inv_held) FROM ari_days") == 2


# ---- 9. no guest data anywhere but encrypted -----------------------------------------------------


async def test_no_guest_number_name_or_words_in_logs_output_tasks_or_rows(
    stack: Stack, all_logs: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """A whole pt conversation to a paid booking with every logger at DEBUG: the guest's
    number (digits, +digits, formatted), their WhatsApp profile name and every text they
    sent appear in no log record, no stdout/stderr, no task body and no row (receipts,
    outbox, conversations, contacts, messages, holds); the number is stored encrypted."""
    guest = "5548996137720"
    name = "Joana Canary Pereira"
    said = [
        "Oi! Aqui é a Joana Canary, tudo bem?",
        "Vocês têm quarto de 05/03/2031 a 07/03/2031 para 2 pessoas? Beijos da Joana Canary",
        "quero o 1 então, obrigada Joana Canary",
    ]
    await calendar(stack)
    for text in said:
        reply = await ask(stack, guest, text, name=name)
    await pay(stack, reply)
    confirmation = (await replies(stack, guest, 4))[3]
    assert "Código:" in confirmation
    await settled(stack)

    forbidden = [
        guest,
        f"+{guest}",
        "+55 48 99613-7720",
        "(48) 99613-7720",
        "99613-7720",
        guest[-8:],
        name,
        "Joana Canary",
        "Canary Pereira",
        *said,
    ]
    formatter = OrjsonFormatter(
        "{levelname}{message}{name}",
        style="{",
        rename_fields={"levelname": "severity", "name": "logger"},
        timestamp="time",
    )
    records = all_logs.records
    assert any(r.getMessage() == "whatsapp_message_answered" for r in records)
    logged = [f"{formatter.format(r)} {r.getMessage()} {vars(r)!r}" for r in records]
    out, err = capfd.readouterr()
    bodies = [task.http_request.body.decode() for task in stack.emulator.tasks.values()]
    assert any("event_id" in b for b in bodies) and any("message_id" in b for b in bodies)
    tables = [
        "processed_events",
        "outbox_events",
        "conversations",
        "contacts",
        "messages",
        "holds",
        "payments",
        "reservations",
    ]
    rows: dict[str, str] = {}
    for table in tables:
        rows[table] = await stack.pool.fetchval(
            f"SELECT coalesce(string_agg(t::text, ' '), '') FROM {table} t"  # noqa: S608
        )
        assert rows[table], f"{table} is empty: nothing was checked"
    assert "sealed" in rows["processed_events"]
    stripe_sent = orjson.dumps(list(stack.stripe.sessions.values())).decode()

    places = {
        **{f"log {i}": text for i, text in enumerate(logged)},
        "stdout": out,
        "stderr": err,
        **{f"task body {i}": body for i, body in enumerate(bodies)},
        **{f"table {table}": text for table, text in rows.items()},
        "stripe sessions": stripe_sent,
    }
    leaks = [
        (place, secret) for place, text in places.items() for secret in forbidden if secret in text
    ]
    assert leaks == []

    stored = await stack.pool.fetch("SELECT phone_encrypted FROM contacts")
    assert len(stored) == 1
    blob = bytes(stored[0]["phone_encrypted"])
    assert guest.encode() not in blob and guest[-8:].encode() not in blob
    assert pii_keys(stack.settings).decrypt(blob, "phone") == guest  # and it is the number


# ---- bugs found by these tests, fixed ------------------------------------------------------


async def test_a_replacing_yes_retried_after_a_stripe_outage_still_gets_its_link(
    stack: Stack,
) -> None:
    """Link A held; new dates quoted; the guest's "quero o 1" meets a Stripe outage (5xx)
    and its task is retried until Stripe is back. Expected: the guest gets link B, hears
    nothing about hold A (they replaced it themselves), and the conversation's one active
    hold is B."""
    guest = "5511970000902"
    cal = await calendar(stack)
    await with_link(stack, guest, cal, first=1)
    await ask(
        stack, guest, f"Tem quarto de {day(cal.start, 5)} a {day(cal.start, 7)} para 2 pessoas?"
    )
    hold_a = await stack.pool.fetchval("SELECT id FROM holds")
    stack.stripe.fail_next = 1_000_000  # every Stripe call answers 500 until reset
    await say(stack, guest, "quero o 1")

    async def a_cancel_notified() -> bool:
        return answered(stack, CONVERSATION_NOTIFY.task_name(f"{hold_a}:hold.cancelled"))

    await eventually(a_cancel_notified, within=20)
    stack.stripe.fail_next = 0
    await settled(stack)

    texts = sent_to(stack, guest)
    assert not any("expirou" in text for text in texts), texts
    assert LINK.search(texts[-1]) is not None, texts
    active = await stack.pool.fetch("SELECT id FROM holds WHERE status = 'active'")
    assert len(active) == 1
    assert (await conversation(stack))["context"].get("hold_id") == str(active[0]["id"])


async def test_por_favor_keeps_a_portuguese_conversation_in_portuguese(stack: Stack) -> None:
    """A Portuguese-speaking guest who adds "por favor" (the same words in Portuguese) to
    their choice keeps getting Portuguese replies."""
    guest = "5511970000903"
    cal = await calendar(stack)
    greeted = await ask(stack, guest, "oi")
    assert greeted.startswith("Olá!")
    quote = await ask(
        stack, guest, f"Tem quarto de {day(cal.start, 4)} a {day(cal.start, 6)} para 2 pessoas?"
    )
    assert "por noite" in quote
    link = await ask(stack, guest, "quero o 1, por favor")
    assert LINK.search(link) is not None, link
    assert link.startswith("Pré-reserva feita:"), link
    assert (await conversation(stack))["language"] == "pt"


async def test_an_english_guest_can_send_back_the_dates_the_bot_offered(stack: Stack) -> None:
    """The nights asked for are closed; the English reply lists nearby dates (in words),
    numbered. The guest sends the first one back exactly as written, rather than its
    number, and gets a quote for those very nights."""
    guest = "15557000904"
    cal = await two_rooms(stack)
    await stack.pool.execute(
        "UPDATE ari_days SET stop_sell = true WHERE property_id = $1 AND date IN ($2, $3)",
        cal.property.id,
        dt.date(2031, 3, 10),
        dt.date(2031, 3, 11),
    )
    answer = await ask(
        stack, guest, "Hi, do you have a room from March 10 2031 to March 12 2031 for 2 people?"
    )
    assert "1. March 8, 2031 to March 10, 2031 (2 nights), Std: R$ 600.00 in total" in answer
    assert "Reply with the number to book" in answer
    quote = await ask(stack, guest, "March 8, 2031 to March 10, 2031 for 2 people")
    assert "For 2 guests, March 8, 2031 to March 10, 2031 (2 nights):" in quote, quote


async def test_the_deadline_given_is_when_the_link_stops_working(stack: Stack) -> None:
    """The payment-link reply's deadline is the last moment the guest can pay: the
    Checkout Session's expiry, after which Stripe's expired event releases the room."""
    guest = "5511970000905"
    cal = await calendar(stack)
    link = await with_link(stack, guest, cal)
    found = LINK.search(link)
    assert found is not None
    closes = dt.datetime.fromtimestamp(stack.stripe.sessions[found.group(1)]["expires_at"], INN_TZ)
    assert f"até {closes:%d/%m às %H:%M} (horário da pousada)" in link, link
