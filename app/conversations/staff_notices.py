"""Telling the inn's staff numbers what they must know.

A notice is one outbox fact told to every staff number of the property, each as a reply
keyed ``staff:<outbox id>:<staff contact hash>``: a task run twice (or concurrently) writes
and sends each notice once. Staff texts are in Portuguese, the inns' language.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg

from app.conversations import replies, store
from app.conversations.model import Services
from app.db import QUERIES
from app.pii import PiiKeys

STAFF_LANGUAGE = "pt"
# Staff seldom write to the inn's number, so notices usually go out as the inn's
# "staff_notice" template, whose one parameter is the notice (filled in when sending).
STAFF_TEMPLATE = {"kind": "staff_notice", "parameters": []}

TEMPLATES = {
    "reservation.confirmed": "Nova reserva {code}: {rooms}, {checkin} a {checkout} "
    "({nights:night}), {guests:person}, total {total}.",
    "payment": "Pagamento para revisão ({kind}): recebido {amount}, esperado {expected} "
    "(pagamento {payment_id}). Veja o runbook: ops payments-without-reservation.",
    "handoff.asked": "O hóspede {phone} pediu para falar com uma pessoa (conversa {ref}).",
    "handoff.not_understood": "O robô não entendeu o hóspede {phone} duas vezes seguidas "
    "(conversa {ref}).",
    "handoff.tail": " {stay}Responda pelo seu WhatsApp; o robô fica em silêncio até você "
    "enviar #bot {ref}.",
    "reservation.cancel_requested": "O hóspede {phone} pediu o cancelamento da reserva {code}. "
    "O robô respondeu que a pousada vai confirmar.",
    "reservation.cancelled": "Reserva {code} cancelada: {rooms}, {checkin} a {checkout}; as "
    "noites voltaram à venda. Reembolso: {refund} ({percent}%).",
    "channel.conflict": "Conflito de canal em {room}: o calendário {calendar} trouxe uma "
    "reserva para {nights}, que já não estavam livres{ours}. Nada foi vendido duas vezes: "
    "essas noites não foram bloqueadas. Veja com o canal (ops conflicts).",
    # Refunds and disputes (app/payments/refunds.py, disputes.py).
    "payment.refunded_outside": "Reembolso de {amount} {what} feito fora do Hotelly (no painel "
    "da Stripe). A reserva continua confirmada; para cancelá-la, use o cancelamento.",
    "payment.disputed": "Contestação (chargeback) de {amount} {what} aberta na Stripe "
    "(motivo: {reason}). Responda pelo painel da Stripe dentro do prazo.",
    "payment.dispute_closed": "A contestação {what} foi encerrada na Stripe: {status}.",
    "refund.failed": "A Stripe não fez o reembolso de {amount} {what} ({why}). Faça-o pelo "
    "painel da Stripe ou devolva o valor de outra forma.",
}
_PAYMENT_KINDS = {"late": "pago após expirar", "duplicate": "em duplicidade", "mismatch": "valor"}
_MONEY_NOTICES = frozenset(
    {"payment.refunded_outside", "payment.disputed", "payment.dispute_closed", "refund.failed"}
)
_DISPUTE_ENDS = {
    "won": "ganha pela pousada",
    "lost": "perdida (o valor volta ao cliente)",
    "warning_closed": "encerrada sem disputa",
    "prevented": "evitada",
}


def ref(conversation_id: str | uuid.UUID) -> str:
    """The short reference a staff member types to name a conversation."""
    return str(conversation_id)[:8]


async def _text(
    conn: asyncpg.Connection, pii: PiiKeys, event_type: str, payload: dict[str, Any]
) -> str | None:
    money = replies.money
    if event_type == "reservation.confirmed":
        row = await conn.fetchrow(
            QUERIES["reservation_summary"], uuid.UUID(payload["reservation_id"])
        )
        if row is None:
            return None
        return replies.fill(
            TEMPLATES[event_type],
            STAFF_LANGUAGE,
            code=row["code"],
            rooms=row["rooms"],
            checkin=replies.day(row["checkin"], STAFF_LANGUAGE),
            checkout=replies.day(row["checkout"], STAFF_LANGUAGE),
            nights=(row["checkout"] - row["checkin"]).days,
            guests=row["guests"],
            total=money(row["total_cents"], row["currency"], STAFF_LANGUAGE),
        )
    if event_type == "reservation.cancelled":
        row = await conn.fetchrow(
            QUERIES["reservation_summary"], uuid.UUID(payload["reservation_id"])
        )
        if row is None:
            return None
        return TEMPLATES[event_type].format(
            code=row["code"],
            rooms=row["rooms"],
            checkin=replies.day(row["checkin"], STAFF_LANGUAGE),
            checkout=replies.day(row["checkout"], STAFF_LANGUAGE),
            refund=money(payload["refund_cents"], payload["currency"], STAFF_LANGUAGE),
            percent=payload["refund_percent"],
        )
    if event_type == "channel.conflict":
        nights = [dt.date.fromisoformat(night) for night in payload["nights"]]
        row = await conn.fetchrow(QUERIES["conflict_summary"], payload["block_id"], nights)
        if row is None:
            return None
        return TEMPLATES[event_type].format(
            room=row["room"],
            calendar=row["calendar"],
            nights=replies.nights_in_words(nights, STAFF_LANGUAGE),
            ours=f" (reserva {row['codes']} daqui)" if row["codes"] else "",
        )
    if event_type in _MONEY_NOTICES:
        code = payload.get("code")
        what = f"da reserva {code}" if code else f"do pagamento {ref(payload['payment_id'])}"
        amount, currency = payload.get("amount_cents"), payload.get("currency")
        return TEMPLATES[event_type].format(
            what=what,
            amount=money(amount, currency, STAFF_LANGUAGE) if amount and currency else "?",
            reason=payload.get("reason") or "não informado",
            status=_DISPUTE_ENDS.get(payload.get("status", ""), payload.get("status")),
            why=payload.get("why") or "recusado",
        )
    if event_type.startswith("payment."):
        return TEMPLATES["payment"].format(
            kind=_PAYMENT_KINDS.get(event_type.split(".", 1)[1], event_type),
            amount=money(payload["amount_cents"], payload["currency"], STAFF_LANGUAGE),
            expected=money(payload["expected_cents"], payload["expected_currency"], STAFF_LANGUAGE),
            payment_id=ref(payload["payment_id"]),
        )
    guest = await conn.fetchrow(QUERIES["guest_contact"], uuid.UUID(payload["conversation_id"]))
    if guest is None:
        return None
    # The staff need the number to answer the guest from their own phone (a guest WhatsApp
    # gave us only by their LID has none: they get the LID).
    address = pii.decrypt(guest["phone_encrypted"], "phone")
    phone = address if "@" in address else "+" + address.lstrip("+")
    short = ref(payload["conversation_id"])
    if event_type == "reservation.cancel_requested":
        return TEMPLATES[event_type].format(phone=phone, code=payload.get("code") or "?")
    stay = guest["context"].get("stay") or {}
    stay_line = ""
    if "checkin" in stay and "checkout" in stay:
        stay_line = f"Datas pedidas: {stay['checkin']} a {stay['checkout']}. "
    return TEMPLATES[f"handoff.{payload.get('reason', 'asked')}"].format(
        phone=phone, ref=short
    ) + TEMPLATES["handoff.tail"].format(stay=stay_line, ref=short)


async def notify_staff(services: Services, pii: PiiKeys, outbox_id: int) -> str:
    async with services.pool.acquire() as conn:
        event = await conn.fetchrow(QUERIES["outbox_event"], outbox_id)
        if event is None or "property_id" not in event["payload"]:
            return "not_applicable"
        payload = event["payload"]
        staff = [
            r["contact_hash"]
            for r in await conn.fetch(QUERIES["staff_of_property"], payload["property_id"])
        ]
        if not staff:
            return "no_staff"
        text = await _text(conn, pii, event["event_type"], payload)
        if text is None:
            return "not_applicable"
        async with conn.transaction():
            for contact_hash in staff:
                conversation_id = await conn.fetchval(
                    QUERIES["upsert_conversation"], payload["property_id"], contact_hash
                )
                await store.insert_reply(
                    conn,
                    pii,
                    conversation_id,
                    text,
                    dedupe_key=f"staff:{outbox_id}:{contact_hash}",
                    template=STAFF_TEMPLATE,
                )
    return "notified"
