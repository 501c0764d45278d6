"""What a registered staff member writes to the inn's number: commands for that inn only
(the one whose number received the message), Portuguese first, Spanish and English
accepted. "#bot [conversa]" hands a conversation back to the bot; "#hoje", "#amanha",
"#reserva CODE" and "#conflitos" read the desk through the back office's look-ups (each
audited, the staff member's contact hash as actor)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from app.backoffice import lookup
from app.backoffice.runner import Scope
from app.conversations import desk, replies, store
from app.conversations.model import Conversation, Services, Turn
from app.conversations.staff_notices import STAFF_LANGUAGE, ref
from app.db import QUERIES
from app.errors import NotFound
from app.pii import PiiKeys

TEMPLATES = {
    "released": "Pronto: o robô voltou a atender a conversa {ref}.",
    "nothing_to_release": "Nenhuma conversa aguardando atendimento.",
    "commands": "Comandos: #hoje, #amanha (chegadas, saídas, hospedados, pré-reservas), "
    "#reserva CÓDIGO, #cancelar CÓDIGO [percentual], #bloquear QUARTO DD/MM DD/MM "
    "[unidades], #liberar QUARTO DD/MM DD/MM [unidades], #preco QUARTO DD/MM DD/MM VALOR, "
    "#minimo QUARTO DD/MM DD/MM NOITES, #nova QUARTO DD/MM DD/MM ADULTOS[+IDADES] NOME, "
    "#link PRÉ-RESERVA|NÚMERO, #conflitos, #bot [conversa], #ajuda. Datas: entrada e saída; "
    "o que muda algo pede #sim (10 minutos) ou #nao.",
    "dropped": "Comando descartado.",
    "nothing_to_drop": "Nada a descartar.",
    "day": "{title} {date}\nChegadas: {arrivals}\nSaídas: {departures}\nHospedados: "
    "{in_house}\nAguardando pagamento: {holds}",
    "none": "nenhuma",
    "reservation": "Reserva {code} ({status}): {rooms}, {checkin} a {checkout}, "
    "{guests:person}, {total}{name}{refunded}.",
    "no_reservation": "Reserva {code} não encontrada nesta pousada. Exemplo: #reserva ABC123",
    "reservation_usage": "Diga o código: #reserva ABC123",
    "conflicts": "Conflitos de canal: {items}",
}
# Each command's words, pt-BR first.
WORDS = {
    "help": ("#ajuda", "#ayuda", "#help"),
    "today": ("#hoje", "#hoy", "#today"),
    "tomorrow": ("#amanha", "#amanhã", "#manana", "#mañana", "#tomorrow"),
    "reservation": ("#reserva", "#reservation", "#booking"),
    "conflicts": ("#conflitos", "#conflictos", "#conflicts"),
    "bot": ("#bot",),
}
_COMMANDS = {word: name for name, words in WORDS.items() for word in words}
_STATUS = {"confirmed": "confirmada", "cancelled": "cancelada"}


def _day(value: dt.date) -> str:
    return f"{value:%d/%m}"


async def staff_command(
    services: Services, staff: Conversation, text: str, actor: str, pii: PiiKeys
) -> Turn:
    turn = Turn(STAFF_LANGUAGE, staff.state, dict(staff.context))
    words = text.strip().split()
    word = words[0].lower() if words else ""
    command = _COMMANDS.get(word)
    scope = Scope(staff.property, actor)
    if word in desk.COMMANDS:
        reply, pending = await desk.propose(services, scope, pii, desk.COMMANDS[word], words)
        _keep(turn, pending)
        turn.replies.append(reply)
    elif word in desk.CONFIRM:
        reply, pending = await desk.confirm(services, scope, pii, staff.context.get("pending"))
        _keep(turn, pending)
        turn.replies.append(reply)
    elif word in desk.DROP:
        had = turn.context.pop("pending", None)
        turn.replies.append(TEMPLATES["dropped" if had else "nothing_to_drop"])
    elif command == "bot":
        turn.replies.append(await _release(services, staff, words))
    elif command in ("today", "tomorrow"):
        turn.replies.append(await _day_at_inn(services, scope, pii, command))
    elif command == "reservation":
        turn.replies.append(await _reservation(services, scope, pii, words))
    elif command == "conflicts":
        turn.replies.append(await _conflicts(services, scope))
    else:
        turn.replies.append(TEMPLATES["commands"])
    return turn


def _keep(turn: Turn, pending: dict[str, Any] | None) -> None:
    """The staff member's command awaiting "#sim" (only one: a new one replaces it)."""
    if pending is None:
        turn.context.pop("pending", None)
    else:
        turn.context["pending"] = pending


async def _release(services: Services, staff: Conversation, words: list[str]) -> str:
    wanted = words[1].lower()[:36] if len(words) > 1 else ""
    async with services.pool.acquire() as conn:
        target = await conn.fetchval(QUERIES["handed_off"], staff.property.id, wanted)
    if target is None:
        return TEMPLATES["nothing_to_release"]
    # The guest's own task may be running: take its lease, as any turn does.
    async with store.leased(services.pool, target), services.pool.acquire() as conn:
        await conn.execute(QUERIES["release_to_bot"], target)
    return TEMPLATES["released"].format(ref=ref(target))


def _stay(item: dict[str, Any]) -> str:
    name = f" {item['guest_name']}" if item.get("guest_name") else ""
    return (
        f"{item['code']} {item['rooms']} {_day(item['checkin'])}-{_day(item['checkout'])} "
        f"({replies.count(item['guests'], 'person', STAFF_LANGUAGE)}){name}"
    )


async def _day_at_inn(services: Services, scope: Scope, pii: PiiKeys, command: str) -> str:
    tz = ZoneInfo(scope.property.timezone)
    today = scope.property.today()
    day = today if command == "today" else today + dt.timedelta(days=1)
    async with services.pool.acquire() as conn:
        at_inn = await lookup.day_at_inn(conn, scope, pii, day)
        holds = await lookup.holds_awaiting_payment(conn, scope)
    none = TEMPLATES["none"]
    held = [
        f"{h['ref']} {_day(h['checkin'])}-{_day(h['checkout'])} "
        f"{replies.money(h['total_cents'], h['currency'], STAFF_LANGUAGE)} "
        f"(até {h['expires_at'].astimezone(tz):%H:%M})"
        for h in holds
    ]
    return TEMPLATES["day"].format(
        title="Hoje" if command == "today" else "Amanhã",
        date=_day(day),
        arrivals="; ".join(_stay(i) for i in at_inn["arrivals"]) or none,
        departures="; ".join(_stay(i) for i in at_inn["departures"]) or none,
        in_house="; ".join(_stay(i) for i in at_inn["in_house"]) or none,
        holds="; ".join(held) or none,
    )


async def _reservation(services: Services, scope: Scope, pii: PiiKeys, words: list[str]) -> str:
    if len(words) < 2:
        return TEMPLATES["reservation_usage"]
    code = words[1].upper()[:12]
    async with services.pool.acquire() as conn:
        try:
            found = await lookup.show_reservation(conn, scope, pii, code)
        except NotFound:
            return TEMPLATES["no_reservation"].format(code=code)
    refunded = found["refunded_cents"]
    return replies.fill(
        TEMPLATES["reservation"],
        STAFF_LANGUAGE,
        code=found["code"],
        status=_STATUS.get(found["status"], found["status"]),
        rooms=", ".join(unit["room_type"] for unit in found["units"]),
        checkin=_day(found["checkin"]),
        checkout=_day(found["checkout"]),
        guests=found["guests"],
        total=replies.money(found["total_cents"], found["currency"], STAFF_LANGUAGE),
        name=f", {found['guest_name']}" if found["guest_name"] else "",
        refunded=(
            f", reembolsado {replies.money(refunded, found['currency'], STAFF_LANGUAGE)}"
            if refunded
            else ""
        ),
    )


async def _conflicts(services: Services, scope: Scope) -> str:
    async with services.pool.acquire() as conn:
        conflicts = await lookup.open_conflicts(conn, scope)
    items = [
        f"{c['room_type']} ({c['calendar']}): "
        + replies.nights_in_words(list(c["conflict_nights"]), STAFF_LANGUAGE)
        for c in conflicts
    ]
    return TEMPLATES["conflicts"].format(items="; ".join(items) or TEMPLATES["none"])
