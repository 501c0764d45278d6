"""The desk's changing commands on WhatsApp: each answers with the back office's preview
and acts only on "#sim" from the same staff member within 10 minutes ("#nao" drops it).

The pending command lives in the staff member's own conversation with the inn (one per
staff number and inn, so no one else can confirm it), with the preview id it must still
match; a guest's name in it is sealed. Applying it is keyed by the pending command's id,
so a redelivered "#sim" applies it once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg

from app.backoffice.blocks import block_units, unblock_units
from app.backoffice.cancel import cancel_reservation
from app.backoffice.links import resend_link
from app.backoffice.rates import change_rates
from app.backoffice.runner import Scope
from app.backoffice.walk_in import create_walk_in
from app.conversations import desk_input, replies
from app.conversations.model import Services
from app.errors import AppError, BadRequest, PreviewChanged
from app.inventory.setup import AriChange
from app.inventory.stay import Party
from app.pii import PiiKeys

PENDING_SECONDS = 600
LANG = "pt"
NAME_PURPOSE = "desk:pending_name"
EXAMPLES = {
    "cancel": "#cancelar ABC123 [percentual]",
    "block": "#bloquear std 10/01 12/01 [unidades]",
    "unblock": "#liberar std 10/01 12/01 [unidades]",
    "price": "#preco std 10/01 12/01 350,50",
    "min_stay": "#minimo std 10/01 12/01 3",
    "walk_in": "#nova std 10/01 12/01 2+5,8 Maria Souza",
    "link": "#link 1a2b3c4d (ou o número do hóspede)",
}
WORDS = {
    "cancel": ("#cancelar", "#cancel"),
    "block": ("#bloquear", "#block"),
    "unblock": ("#liberar", "#unblock"),
    "price": ("#preco", "#preço", "#precio", "#price"),
    "min_stay": ("#minimo", "#mínimo", "#min"),
    "walk_in": ("#nova", "#nueva", "#new"),
    "link": ("#link", "#enlace"),
}
COMMANDS = {word: name for name, words in WORDS.items() for word in words}
CONFIRM = ("#sim", "#si", "#sí", "#yes")
DROP = ("#nao", "#não", "#no")
CONFIRM_LINE = " Confirme com #sim em até 10 minutos, ou #nao."


def _money(cents: int, currency: str) -> str:
    return replies.money(cents, currency, LANG)


def _nights(dates: list[Any]) -> str:
    return replies.nights_in_words([dt.date.fromisoformat(str(d)) for d in dates], LANG)


async def read(
    conn: asyncpg.Connection, scope: Scope, pii: PiiKeys, name: str, words: list[str]
) -> dict[str, Any]:
    """The command's arguments from the staff member's words (raises BadRequest)."""
    example = f"Exemplo: {EXAMPLES[name]}"
    if name == "cancel":
        if len(words) not in (2, 3):
            raise BadRequest(f"diga o código. {example}")
        percent = (
            desk_input.count(words[2].rstrip("%"), "percentual", EXAMPLES[name])
            if len(words) == 3
            else None
        )
        return {"code": words[1].upper()[:12], "percent": percent}
    if name == "link":
        if len(words) != 2:
            raise BadRequest(f"diga a pré-reserva ou o número. {example}")
        ref = words[1]
        if ref.lstrip("+").isdigit() and len(ref.lstrip("+")) >= 10:
            return {"phone": pii.seal(ref, NAME_PURPOSE)}
        return {"hold": ref.lower()[:36]}
    if len(words) < 4:
        raise BadRequest(f"faltam dados. {example}")
    room = await desk_input.room(conn, scope.property.id, words[1], EXAMPLES[name])
    checkin, checkout = desk_input.dates(words[2], words[3], scope.property.today(), EXAMPLES[name])
    args: dict[str, Any] = {
        "room": room,
        "checkin": checkin.isoformat(),
        "checkout": checkout.isoformat(),
    }
    rest = words[4:]
    if name in ("block", "unblock"):
        if len(rest) > 1:
            raise BadRequest(f"dados demais. {example}")
        args["units"] = desk_input.count(rest[0], "unidades", EXAMPLES[name]) if rest else 1
    elif name == "price":
        if not rest:
            raise BadRequest(f"diga o valor. {example}")
        args["cents"] = desk_input.money(" ".join(rest), EXAMPLES[name])
    elif name == "min_stay":
        if len(rest) != 1:
            raise BadRequest(f"diga as noites. {example}")
        args["nights"] = desk_input.count(rest[0], "noites", EXAMPLES[name])
    elif name == "walk_in":
        if len(rest) < 2:
            raise BadRequest(f"diga os hóspedes e o nome. {example}")
        args["party"] = desk_input.party(rest[0], EXAMPLES[name]).as_json()
        args["name"] = pii.seal(" ".join(rest[1:]), NAME_PURPOSE)
    return args


async def run(
    services: Services,
    conn: asyncpg.Connection,
    scope: Scope,
    pii: PiiKeys,
    name: str,
    args: dict[str, Any],
    *,
    execute: bool = False,
    expected: str | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """The back-office command behind a desk command: its preview, or its result."""
    common: dict[str, Any] = {"execute": execute, "expected": expected, "key": key}
    if name == "cancel":
        return await cancel_reservation(
            conn, scope, args["code"], refund_percent=args["percent"], **common
        )
    if name == "link":
        phone = pii.unseal(args["phone"], NAME_PURPOSE) if "phone" in args else None
        return await resend_link(
            conn,
            scope,
            services.stripe,
            services.settings,
            pii,
            hold=args.get("hold"),
            phone=phone,
            execute=execute,
        )
    room = args["room"]
    checkin = dt.date.fromisoformat(args["checkin"])
    checkout = dt.date.fromisoformat(args["checkout"])
    if name in ("block", "unblock"):
        command = block_units if name == "block" else unblock_units
        return await command(conn, scope, room, checkin, checkout, args["units"], **common)
    if name in ("price", "min_stay"):
        change = (
            AriChange(rate_cents=args["cents"])
            if name == "price"
            else AriChange(min_stay=args["nights"])
        )
        return await change_rates(conn, scope, room, checkin, checkout, change, **common)
    party = Party(args["party"]["adults"], tuple(args["party"]["children_ages"]))
    guest = pii.unseal(args["name"], NAME_PURPOSE)
    return await create_walk_in(conn, scope, pii, room, checkin, checkout, party, guest, **common)


def says(name: str, args: dict[str, Any], result: dict[str, Any], currency: str) -> str:
    """A preview, or what was done, in one short Portuguese line."""
    done = result.get("outcome") != "preview"
    if result.get("outcome") == "already_cancelled":
        return f"A reserva {result['code']} já estava cancelada."
    if result.get("outcome") == "already_created":
        return f"Essa reserva já foi feita: {result['code']}."
    if name == "cancel":
        refund = _money(result["refund_cents"], currency)
        why = "definido por você" if result["percent_from"] == "staff" else "pela política"
        nights = _nights([n["date"] for n in result["nights"]])
        if done:
            return (
                f"Reserva {result['code']} cancelada: {nights} voltaram à venda; "
                f"reembolso {refund}."
            )
        return (
            f"Cancelar a reserva {result['code']}: {nights} voltam à venda; reembolso "
            f"{refund} ({result['refund_percent']}%, {why})."
        )
    if name == "link":
        which = "o mesmo link" if result["session"] == "same" else "um link novo"
        if done:
            return f"Link enviado ao hóspede ({which}) da pré-reserva {result['hold_ref']}."
        return f"Enviar ao hóspede {which} de pagamento da pré-reserva {result['hold_ref']}."
    nights = _nights(
        result["nights"] if name != "walk_in" else [n["date"] for n in result["nights"]]
    )
    room = args["room"]
    if name in ("block", "unblock"):
        verb = (
            ("Bloqueado" if name == "block" else "Liberado")
            if done
            else ("Bloquear" if name == "block" else "Liberar")
        )
        return f"{verb} {result['units']} {room}: {nights}."
    if name == "price":
        verb = "Preço alterado" if done else "Alterar o preço"
        return f"{verb} de {room} para {_money(args['cents'], currency)} por noite: {nights}."
    if name == "min_stay":
        verb = "Estadia mínima alterada" if done else "Alterar a estadia mínima"
        return f"{verb} de {room} para {args['nights']} noites, chegando em {nights}."
    total = _money(result["total_cents"], currency)
    if done:
        return f"Reserva {result['code']} feita: {room}, {nights}, total {total}, pago na pousada."
    people = replies.party(
        args["party"]["adults"] + len(args["party"]["children_ages"]),
        args["party"]["adults"],
        list(args["party"]["children_ages"]),
        LANG,
    )
    return f"Nova reserva {room}: {nights}, {people}, total {total}, pago na pousada."


async def propose(
    services: Services, scope: Scope, pii: PiiKeys, name: str, words: list[str]
) -> tuple[str, dict[str, Any] | None]:
    """The reply to a changing command, and the pending command to keep (None: nothing
    to confirm)."""
    async with services.pool.acquire() as conn:
        try:
            args = await read(conn, scope, pii, name, words)
            preview = await run(services, conn, scope, pii, name, args)
        except AppError as exc:
            if exc.status >= 500:
                raise
            return f"Não foi possível: {exc}", None
    text = says(name, args, preview, scope.property.currency)
    if preview.get("outcome") != "preview":
        return text, None
    pending = {
        "id": uuid.uuid4().hex,
        "command": name,
        "args": args,
        "preview_id": preview["preview_id"],
        "at": dt.datetime.now(dt.UTC).isoformat(),
    }
    return text + CONFIRM_LINE, pending


async def confirm(
    services: Services, scope: Scope, pii: PiiKeys, pending: dict[str, Any] | None
) -> tuple[str, dict[str, Any] | None]:
    """ "#sim": the pending command applied (or refused with its fresh preview)."""
    if pending is None:
        return "Nada a confirmar.", None
    age = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(pending["at"])
    if age > dt.timedelta(seconds=PENDING_SECONDS):
        return "Passaram mais de 10 minutos: envie o comando de novo.", None
    name, args = pending["command"], pending["args"]
    async with services.pool.acquire() as conn:
        try:
            result = await run(
                services,
                conn,
                scope,
                pii,
                name,
                args,
                execute=True,
                expected=pending["preview_id"] if name != "link" else None,
                key=f"desk:{pending['id']}" if name != "link" else None,
            )
        except PreviewChanged as exc:
            fresh = exc.preview["preview"]
            assert isinstance(fresh, dict)
            text = "Algo mudou desde a prévia. " + says(
                name, args, {**fresh, "outcome": "preview"}, scope.property.currency
            )
            renewed = {
                **pending,
                "preview_id": fresh["preview_id"],
                "at": dt.datetime.now(dt.UTC).isoformat(),
            }
            return text + CONFIRM_LINE, renewed
        except AppError as exc:
            if exc.status >= 500:
                raise
            return f"Não foi possível: {exc}", None
    return says(name, args, result, scope.property.currency), None
