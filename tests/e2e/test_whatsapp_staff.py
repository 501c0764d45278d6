"""The inn's side: staff numbers notified once per fact, human handoff and "#bot", and
WhatsApp's 24-hour window (templates outside it, nothing free-form)."""

from __future__ import annotations

import datetime as dt

import pytest
from pythonjsonlogger.json import JsonFormatter

from app.dev.fake_graph import inbound_envelope
from app.dev.fake_stripe import event
from app.inventory.property_file import PropertySpec, RoomTypeSpec
from app.inventory.setup import import_property
from app.pii import pii_keys
from tests.e2e.conftest import Stack, rows_as_text
from tests.e2e.test_whatsapp_flow import GUEST, _pay, _settled, replies, say
from tests.inventory.conftest import START
from tests.support import eventually

STAFF = ("+55 48 99999-0001", "+55 48 99999-0002")
STAFF_IDS = ("5548999990001", "5548999990002")
TEMPLATES = {
    "confirmed": {"pt": "reserva_confirmada", "en": "booking_confirmed"},
    "hold_ended": {"pt": "pre_reserva_expirou"},
    "staff_notice": {"pt": "aviso_equipe"},
}


async def _inn(stack: Stack) -> None:
    spec = PropertySpec(
        code="test-inn",
        name="Pousada Teste",
        timezone="America/Sao_Paulo",
        currency="BRL",
        whatsapp={"phone_number_id": "pn-test-inn", "templates": TEMPLATES},
        room_types=(RoomTypeSpec("std", "Std", 2, 1, 30000),),
        overrides=(),
        start=START,
        end=START + dt.timedelta(days=19),
        staff_numbers=STAFF,
    )
    async with stack.pool.acquire() as conn:
        await import_property(conn, spec, pii=pii_keys(stack.settings))


def _day(offset: int) -> str:
    return f"{START + dt.timedelta(days=offset):%d/%m/%Y}"


async def test_staff_numbers_are_stored_only_encrypted(stack: Stack) -> None:
    await _inn(stack)
    rows = await stack.pool.fetchval(
        "SELECT concat_ws(' ', (SELECT string_agg(t::text, ' ') FROM contacts t),"
        " (SELECT string_agg(t::text, ' ') FROM properties t),"
        " (SELECT string_agg(t::text, ' ') FROM staff_numbers t))"
    )
    assert await stack.pool.fetchval("SELECT count(*) FROM staff_numbers") == 2
    for number in (*STAFF, *STAFF_IDS, "99999-0001"):
        assert number not in rows


async def test_a_guest_asking_for_a_person_is_handed_to_the_staff(stack: Stack) -> None:
    await _inn(stack)
    await say(stack, "quero falar com uma pessoa")
    assert "alguém da pousada" in (await replies(stack, 1))[0]
    for staff in STAFF_IDS:
        notice = (await replies(stack, 1, staff))[0]
        assert f"+{GUEST}" in notice and "#bot" in notice
    await say(stack, "oi, alguém aí?")  # the bot stays silent while the staff have it
    await _settled(stack)
    assert len(await replies(stack, 1)) == 1
    assert await stack.pool.fetchval("SELECT count(*) FROM messages WHERE direction = 'in'") == 2

    await say(stack, "#bot", STAFF_IDS[1])
    assert "voltou a atender" in (await replies(stack, 2, STAFF_IDS[1]))[1]
    await say(stack, "oi")
    assert "Olá" in (await replies(stack, 2))[1]


async def test_the_bot_speaks_again_after_the_handoff_timeout(stack: Stack) -> None:
    await _inn(stack)
    await say(stack, "quero falar com um atendente")
    await replies(stack, 1)
    await _settled(stack)
    await stack.pool.execute(
        "UPDATE conversations SET context = jsonb_set(context, '{human_since}',"
        " to_jsonb((now() - interval '5 hours')::text)) WHERE state = 'human'"
    )
    await say(stack, "oi")
    assert "Olá" in (await replies(stack, 2))[1]


async def test_not_understood_twice_in_a_row_is_handed_off(stack: Stack) -> None:
    await _inn(stack)
    await say(stack, "blá blá")
    assert "Posso ver disponibilidade" in (await replies(stack, 1))[0]
    await say(stack, "xpto?")
    assert "alguém da pousada" in (await replies(stack, 2))[1]
    assert "não entendeu" in (await replies(stack, 1, STAFF_IDS[0]))[0]


async def test_new_reservation_and_cancellation_request_reach_each_staff_once(
    stack: Stack,
) -> None:
    await _inn(stack)
    stack.emulator.extra_deliveries = 2  # every task runs three times
    await say(stack, f"de {_day(0)} a {_day(2)}, 2 pessoas")
    await replies(stack, 1)
    await say(stack, "sim")
    await _pay(stack, (await replies(stack, 2))[1])
    code = (await replies(stack, 3))[2].split("Código: ")[1][:6]
    await say(stack, "quero cancelar")
    assert "pedido de cancelamento" in (await replies(stack, 4))[3]
    await _settled(stack)
    for staff in STAFF_IDS:
        notices = await replies(stack, 2, staff)
        assert len(notices) == 2
        assert notices[0].startswith(f"Nova reserva {code}: Std")
        assert code in notices[1] and "cancelamento" in notices[1]
    assert len(await replies(stack, 4)) == 4
    assert await stack.pool.fetchval("SELECT status FROM reservations") == "confirmed"


async def test_staff_talking_to_the_bot_get_the_commands(stack: Stack) -> None:
    await _inn(stack)
    envelope = inbound_envelope("pn-test-inn", STAFF_IDS[0], "bom dia")
    assert (await stack.post_whatsapp(envelope)).status_code == 200
    assert "#bot" in (await replies(stack, 1, STAFF_IDS[0]))[0]
    await say(stack, "#bot", STAFF_IDS[0])
    assert "Nenhuma conversa" in (await replies(stack, 2, STAFF_IDS[0]))[1]


async def _close_window(stack: Stack) -> None:
    await stack.pool.execute(
        "UPDATE conversations SET last_inbound_at = now() - interval '25 hours'"
        " WHERE contact_hash = $1",
        pii_keys(stack.settings).contact_hash(GUEST),
    )


async def test_confirmation_after_25_hours_goes_out_as_a_template(stack: Stack) -> None:
    await _inn(stack)
    await say(stack, f"de {_day(0)} a {_day(2)}, 2 pessoas")
    await replies(stack, 1)
    await say(stack, "sim")
    link = (await replies(stack, 2))[1]
    await _settled(stack)
    await _close_window(stack)
    await _pay(stack, link)
    await replies(stack, 3)
    confirmation = [m for m in stack.graph.sent if m["to"] == GUEST][2]
    code = await stack.pool.fetchval("SELECT code FROM reservations")
    assert confirmation["template"] == "reserva_confirmada"
    assert confirmation["language"] == "pt_BR"
    assert confirmation["parameters"] == [code, _day(0), _day(2)]
    await replies(stack, 1, STAFF_IDS[0])
    staff_notice = next(m for m in stack.graph.sent if m["to"] == STAFF_IDS[0])
    assert staff_notice["template"] == "aviso_equipe"  # staff never wrote: their window is shut
    assert staff_notice["parameters"][0].startswith(f"Nova reserva {code}")


async def test_free_form_reply_outside_the_window_is_never_sent(stack: Stack) -> None:
    await _inn(stack)
    stack.graph.fail_with(503)  # the first attempt fails; the window shuts before the retry
    await say(stack, "oi")

    async def failed_once() -> bool:
        return any(d.status == 503 for d in stack.emulator.deliveries)

    await eventually(failed_once)
    await _close_window(stack)
    await _settled(stack)
    row = await stack.pool.fetchrow(
        "SELECT status, sent_at, last_error FROM messages WHERE direction = 'out'"
    )
    assert row["status"] == "undeliverable" and row["sent_at"] is None
    assert "24-hour" in row["last_error"]
    assert [m for m in stack.graph.sent if m["to"] == GUEST] == []
    sends = [d.status for d in stack.emulator.deliveries if d.task.startswith("send-")]
    assert sends == [503, 200]  # recorded, not retried


async def test_a_payment_needing_review_reaches_the_staff_once(stack: Stack) -> None:
    await _inn(stack)
    stack.emulator.extra_deliveries = 2
    await say(stack, f"de {_day(0)} a {_day(2)}, 2 pessoas")
    await replies(stack, 1)
    await say(stack, "sim")
    link = (await replies(stack, 2))[1]
    session = stack.stripe.complete(link.rsplit("/", 1)[1])
    session["amount_total"] = 100  # not what the hold costs
    response = await stack.post_event(event("checkout.session.completed", session))
    assert response.status_code == 200
    for staff in STAFF_IDS:
        notice = (await replies(stack, 1, staff))[0]
        assert notice.startswith("Pagamento para revisão (valor): recebido R$ 1,00")
    await _settled(stack)
    assert len(await replies(stack, 1, STAFF_IDS[0])) == 1
    assert await stack.pool.fetchval("SELECT count(*) FROM reservations") == 0


async def test_no_guest_or_staff_number_in_logs_or_tasks(
    stack: Stack, all_logs: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Handoff, "#bot", a reservation and its staff notices, with every logger at DEBUG:
    neither the guest's nor the staff's numbers, nor any text, reach a log, the captured
    output, a task body, an outbox payload or a row as text."""
    await _inn(stack)
    said = ["quero falar com uma pessoa", f"de {_day(0)} a {_day(2)}, 2 pessoas", "sim"]
    await say(stack, said[0])
    await replies(stack, 1, STAFF_IDS[0])
    await say(stack, "#bot", STAFF_IDS[0])
    await replies(stack, 2, STAFF_IDS[0])
    await say(stack, said[1])
    await replies(stack, 2)
    await say(stack, said[2])
    await _pay(stack, (await replies(stack, 3))[2])
    await replies(stack, 2, STAFF_IDS[1])  # the handoff, then the new reservation
    await _settled(stack)

    numbers = [GUEST, *STAFF_IDS, *STAFF, GUEST[-8:], STAFF_IDS[0][-8:]]
    logged = [f"{JsonFormatter().format(r)} {vars(r)!r}" for r in all_logs.records]
    out, err = capfd.readouterr()
    bodies = [t.http_request.body.decode() for t in stack.emulator.tasks.values()]
    rows = await rows_as_text(stack)
    for place in [*logged, out, err, *bodies, rows]:
        for secret in [*numbers, *said]:
            assert secret not in place
