"""The inn's desk on WhatsApp: a registered staff number reads the day, a reservation and
the conflicts of the inn whose number it writes to, and only that inn's; each read is
audited under the staff member's contact hash; a guest writing the same words is a guest."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from app.conversations.desk import CONFIRM_LINE
from app.dev.fake_graph import inbound_envelope
from app.dev.fake_stripe import event
from app.inventory.property_file import CancellationTier, PropertySpec, RoomTypeSpec
from app.inventory.setup import import_property
from app.pii import pii_keys
from tests.e2e.conftest import Stack, rows_as_text
from tests.e2e.test_whatsapp_flow import GUEST, _settled, replies, say
from tests.e2e.test_whatsapp_staff import STAFF, STAFF_IDS, TEMPLATES
from tests.support import eventually

TZ = ZoneInfo("America/Sao_Paulo")


async def _inn(stack: Stack, code: str, staff: tuple[str, ...], today: dt.date) -> None:
    spec = PropertySpec(
        code=code,
        name="Pousada Teste",
        timezone="America/Sao_Paulo",
        currency="BRL",
        whatsapp={"phone_number_id": f"pn-{code}", "templates": TEMPLATES},
        room_types=(RoomTypeSpec("std", "Std", 2, 2, 30000),),
        overrides=(),
        start=today,
        end=today + dt.timedelta(days=20),
        staff_numbers=staff,
        cancellation=(CancellationTier(7, 100), CancellationTier(0, 0)),
    )
    async with stack.pool.acquire() as conn:
        await import_property(conn, spec, pii=pii_keys(stack.settings))


async def _ask(stack: Stack, text: str, sender: str, inn: str = "test-inn") -> None:
    envelope = inbound_envelope(f"pn-{inn}", sender, text)
    assert (await stack.post_whatsapp(envelope)).status_code == 200


async def test_staff_read_the_desk_of_the_inn_they_write_to(
    stack: Stack, all_logs: pytest.LogCaptureFixture
) -> None:
    today = dt.datetime.now(TZ).date()
    await _inn(stack, "test-inn", STAFF[:1], today)
    await _inn(stack, "other-inn", STAFF[1:], today)
    await say(stack, f"de {today:%d/%m/%Y} a {today + dt.timedelta(days=2):%d/%m/%Y}, 2 pessoas")
    await replies(stack, 1)
    await say(stack, "sim")
    link = (await replies(stack, 2))[1]
    session = stack.stripe.complete(link.split("/pay/")[1].split()[0])
    assert (await stack.post_event(event("checkout.session.completed", session))).status_code == 200
    code = (await replies(stack, 3))[2].split("Código: ")[1][:6]
    await _settled(stack)
    staff = STAFF_IDS[0]
    told = len(await replies(stack, 1, staff))  # the new-reservation notice

    await _ask(stack, "#hoje", staff)
    day = (await replies(stack, told + 1, staff))[told]
    assert day.startswith(f"Hoje {today:%d/%m}") and f"Chegadas: {code} std" in day
    assert "Aguardando pagamento: nenhuma" in day
    await _ask(stack, "#mañana", staff)
    assert f"Hospedados: {code}" in (await replies(stack, told + 2, staff))[told + 1]
    await _ask(stack, f"#reserva {code.lower()}", staff)
    shown = (await replies(stack, told + 3, staff))[told + 2]
    assert shown.startswith(f"Reserva {code} (confirmada): std") and "R$ 600,00" in shown
    await _ask(stack, "#conflitos", staff)
    assert (await replies(stack, told + 4, staff))[told + 3] == "Conflitos de canal: nenhuma"
    await _ask(stack, "#ajuda", staff)
    assert "#reserva" in (await replies(stack, told + 5, staff))[told + 4]

    # The other inn's staff member, writing to the other inn's number: not this booking.
    await _ask(stack, f"#reserva {code}", STAFF_IDS[1], "other-inn")
    assert "não encontrada" in (await replies(stack, 1, STAFF_IDS[1]))[0]
    await _ask(stack, f"#cancelar {code}", STAFF_IDS[1], "other-inn")
    assert "Não foi possível" in (await replies(stack, 2, STAFF_IDS[1]))[1]
    # A guest writing a command is a guest: no command runs, no audit row.
    await say(stack, f"#cancelar {code}")
    await replies(stack, 4)
    await _settled(stack)
    assert await stack.pool.fetchval("SELECT status FROM reservations") == "confirmed"
    rows = await stack.pool.fetch(
        "SELECT p.code, a.actor, a.command, a.result FROM audit_log a"
        " JOIN properties p ON p.id = a.property_id ORDER BY a.id"
    )
    hashes = pii_keys(stack.settings)
    mine, theirs = hashes.contact_hash(staff), hashes.contact_hash(STAFF_IDS[1])
    assert [(r["code"], r["actor"], r["command"]) for r in rows] == [
        ("test-inn", mine, "reservations.day"),
        ("test-inn", mine, "holds.awaiting"),
        ("test-inn", mine, "reservations.day"),
        ("test-inn", mine, "holds.awaiting"),
        ("test-inn", mine, "reservation.show"),
        ("test-inn", mine, "conflicts.open"),
        ("other-inn", theirs, "reservation.show"),
    ]
    assert rows[-1]["result"] == {"error": "not_found"}  # a refused preview writes nothing
    logged = "".join(str(r.__dict__) for r in all_logs.records)
    assert GUEST not in logged and staff not in logged


async def _desk(stack: Stack, text: str, staff: str, expect: str) -> str:
    """Send a staff command; the reply (among the staff member's new messages) that says
    ``expect``."""
    before = len([m for m in stack.graph.sent if m["to"] == staff])
    await _ask(stack, text, staff)

    async def answered() -> str | None:
        new = [m["text"] for m in stack.graph.sent if m["to"] == staff][before:]
        return next((t for t in new if expect in t), None)

    return await eventually(answered)


async def test_changing_commands_act_only_on_the_same_staffs_yes_within_ten_minutes(
    stack: Stack, all_logs: pytest.LogCaptureFixture
) -> None:
    today = dt.datetime.now(TZ).date()
    await _inn(stack, "test-inn", STAFF, today)
    first = today + dt.timedelta(days=10)
    d1, d2 = f"{first:%d/%m}", f"{first + dt.timedelta(days=2):%d/%m}"
    await say(stack, f"de {first:%d/%m/%Y} a {first + dt.timedelta(days=2):%d/%m/%Y}, 2 pessoas")
    await replies(stack, 1)
    await say(stack, "sim")
    link = (await replies(stack, 2))[1]
    session = stack.stripe.complete(link.split("/pay/")[1].split()[0])
    assert (await stack.post_event(event("checkout.session.completed", session))).status_code == 200
    code = (await replies(stack, 3))[2].split("Código: ")[1][:6]
    one, other = STAFF_IDS

    preview = await _desk(stack, f"#cancelar {code}", one, "Cancelar a reserva")
    assert f"as noites de {d1} a {first + dt.timedelta(days=1):%d/%m}" in preview
    assert "reembolso R$ 600,00 (100%, pela política)" in preview and "#sim" in preview
    assert await _desk(stack, "#sim", other, "Nada a confirmar") == "Nada a confirmar."
    assert await stack.pool.fetchval("SELECT status FROM reservations") == "confirmed"
    done = await _desk(stack, "#sim", one, "voltaram à venda")
    assert done.startswith(f"Reserva {code} cancelada")
    assert await stack.pool.fetchval("SELECT status FROM reservations") == "cancelled"

    await _desk(stack, f"#bloquear std {d1} {d2} 2", one, "Bloquear 2 std")
    assert await _desk(stack, "#nao", one, "descartado") == "Comando descartado."
    await _desk(stack, f"#bloquear Std {d1} {d2}", one, "Bloquear 1 std")
    await stack.pool.execute(
        "UPDATE conversations SET context = jsonb_set(context, '{pending,at}',"
        " to_jsonb((now() - interval '11 minutes')::text)) WHERE context ? 'pending'"
    )
    await _desk(stack, "#sim", one, "mais de 10 minutos")
    assert await stack.pool.fetchval("SELECT count(*) FROM blocks") == 0

    await _desk(stack, f"#bloquear std {d1} {d2}", one, "Bloquear 1 std")
    await _desk(stack, "#sim", one, "Bloqueado 1 std")
    await _desk(stack, f"#liberar std {d1} {d2}", one, "Liberar 1 std")
    await _desk(stack, "#sim", one, "Liberado 1 std")
    await _desk(stack, f"#preco std {d1} {d2} R$ 350,50", one, "Alterar o preço de std")
    await _desk(stack, "#sim", one, "Preço alterado")
    await _desk(stack, f"#minimo std {d1} {d2} 2", one, "Alterar a estadia mínima")
    await _desk(stack, "#sim", one, "Estadia mínima alterada")
    nights = await stack.pool.fetch(
        "SELECT rate_cents, min_stay FROM ari_days WHERE date >= $1 AND date < $2",
        first,
        first + dt.timedelta(days=2),
    )
    assert [(n["rate_cents"], n["min_stay"]) for n in nights] == [(35050, 2)] * 2
    walk_in = await _desk(stack, f"#nova std {d1} {d2} 1+5 Maria Canária", one, "Nova reserva")
    assert "R$ 701,00" in walk_in and "Maria" not in walk_in
    made = await _desk(stack, "#sim", one, "feita")
    new_code = made.split("Reserva ")[1][:6]
    assert (
        await stack.pool.fetchval(
            "SELECT p.provider FROM reservations r JOIN payments p ON p.id = r.payment_id"
            " WHERE r.code = $1",
            new_code,
        )
        == "offline"
    )

    for bad, says in [
        (f"#bloquear suite {d1} {d2}", "quarto desconhecido: suite"),
        (f"#preco std {d1} {d2} trezentos", "valor inválido: trezentos"),
        (f"#bloquear std {d2} {d1}", "deve ser depois"),
        ("#cancelar", "diga o código"),
    ]:
        reply = await _desk(stack, bad, one, says)
        assert reply.startswith("Não foi possível") and "Exemplo" in reply
    await _settled(stack)
    commands = [
        r["command"]
        for r in await stack.pool.fetch(
            "SELECT command FROM audit_log WHERE result ? 'outcome' AND result->>'outcome' <> "
            "'shown' ORDER BY id"
        )
    ]
    assert commands == [
        "reservation.cancel",
        "block.add",
        "block.remove",
        "ari.change",
        "ari.change",
        "reservation.create",
    ]
    stored = await rows_as_text(stack)
    logged = "".join(str(r.__dict__) for r in all_logs.records)
    for secret in ("Canária", one, other):
        assert secret not in stored and secret not in logged


async def test_link_sends_the_guest_the_payment_link_again_after_yes(stack: Stack) -> None:
    today = dt.datetime.now(TZ).date()
    await _inn(stack, "test-inn", STAFF, today)
    first = today + dt.timedelta(days=5)
    await say(stack, f"de {first:%d/%m/%Y} a {first + dt.timedelta(days=1):%d/%m/%Y}, 2 pessoas")
    await replies(stack, 1)
    await say(stack, "sim")
    session = (await replies(stack, 2))[1].split("/pay/")[1].split()[0]
    one = STAFF_IDS[0]
    day = await _desk(stack, "#hoje", one, "Aguardando pagamento")
    ref = day.split("Aguardando pagamento: ")[1].split()[0]
    assert await _desk(stack, f"#link {ref}", one, "Enviar ao hóspede") == (
        f"Enviar ao hóspede o mesmo link de pagamento da pré-reserva {ref}.{CONFIRM_LINE}"
    )
    await _desk(stack, "#sim", one, "Link enviado")
    assert session in (await replies(stack, 3))[2]
    await _desk(stack, f"#link +{GUEST}", one, "Enviar ao hóspede o mesmo link")
    await _desk(stack, "#sim", one, "Link enviado")
    assert session in (await replies(stack, 4))[3]
