"""The worker's conversation tasks: one inbound message, or one fact the guest must hear.

Each task takes the conversation's lease first (store.leased), so two tasks never
interleave in one conversation, then records its turn in one transaction: the inbound
message, the replies with their outbox rows, the new state and the receipt's outcome.
Replies are keyed by what produced them, so a replayed task writes and sends nothing twice.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import asyncpg
import orjson

from app.conversations import store, voice
from app.conversations.engine import notify, respond
from app.conversations.model import Conversation, Services, Turn
from app.conversations.replies import DEFAULT_LANGUAGE
from app.conversations.staff_commands import staff_command
from app.db import QUERIES
from app.errors import AppError
from app.logging import annotate_request
from app.messaging.inbound import Reading
from app.pii import PiiKeys, SealBroken

log = logging.getLogger("app.conversations")


async def _is_staff(pool: asyncpg.Pool, conv: Conversation, contact_hash: str) -> bool:
    async with pool.acquire() as conn:
        return bool(await conn.fetchval(QUERIES["is_staff"], conv.property.id, contact_hash))


async def handle_message(services: Services, pii: PiiKeys, event_id: str) -> str:
    """Answer one received WhatsApp message (its receipt carries it sealed)."""
    pool = services.pool
    async with pool.acquire() as conn:
        receipt = await conn.fetchrow(QUERIES["receipt_for_task"], "whatsapp", event_id)
    if receipt is None:
        return "unknown_event"
    if receipt["processed_at"] is not None:
        return str(receipt["outcome"])
    details: dict[str, Any] = receipt["details"]
    annotate_request(event_id=event_id, contact_hash=details["contact_hash"])
    try:
        opened = orjson.loads(pii.unseal(details["sealed"], f"whatsapp:{event_id}"))
    except SealBroken:
        # Sealed under another key or altered: no retry can read it.
        async with pool.acquire() as conn:
            await conn.execute(QUERIES["finish_receipt"], "whatsapp", event_id, "unreadable")
        log.error("whatsapp_message_unreadable", extra={"event_id": event_id})
        return "unreadable"
    # Receipts from before readings were recorded are texts.
    reading: Reading = details.get("reading", "text")
    async with pool.acquire() as conn, conn.transaction():
        contact = await store.contact_of(conn, pii, details, opened["from"])
        conversation_id = await conn.fetchval(
            QUERIES["upsert_conversation"], details["property_id"], contact
        )
    async with store.leased(pool, conversation_id) as conv:
        async with pool.acquire() as conn:
            # Under the lease: a duplicate task that waited for it finds the work done.
            receipt = await conn.fetchrow(QUERIES["receipt_for_task"], "whatsapp", event_id)
        if receipt["processed_at"] is not None:
            return str(receipt["outcome"])
        text = opened["text"]
        try:
            staff = await _is_staff(pool, conv, contact)
            if reading == "voice" and not staff:
                # Under the lease, so a duplicate task never transcribes the note twice.
                heard = await voice.transcript(services, pii, conv.property, opened.get("media"))
                if heard is not None:
                    text, reading = heard, "text"
            if not staff:
                turn = await respond(services, conv, text, event_id, reading)
            elif reading == "silent":
                turn = Turn(conv.language or DEFAULT_LANGUAGE, conv.state, conv.context)
            else:
                turn = await staff_command(services, conv, text, contact, pii)
        except AppError as exc:
            if exc.status >= 500:
                raise  # retryable: Cloud Tasks tries the whole turn again
            # Permanent for this message (a retry would meet the same refusal): say so
            # rather than answer the task 4xx, which Cloud Tasks would retry for ever.
            log.warning("whatsapp_turn_refused", extra={"event_id": event_id, "error": exc.code})
            turn = Turn(conv.language or DEFAULT_LANGUAGE, conv.state, conv.context)
            turn.say("failed")
        async with pool.acquire() as conn, conn.transaction():
            await store.insert_inbound(
                conn,
                pii,
                conv.id,
                # What the guest sent or said, or its kind for what has no words ("[reaction]").
                text or f"[{receipt['event_type'].removeprefix('message.')}]",
                provider_message_id=event_id,
                received_at=receipt["received_at"],
            )
            await store.record_turn(conn, pii, conv, turn, event_id, inbound=True)
            outcome = "recorded" if reading == "silent" else "answered"
            await conn.execute(QUERIES["finish_receipt"], "whatsapp", event_id, outcome)
    log.info(
        "whatsapp_message_answered",
        extra={
            "event_id": event_id,
            "reading": reading,
            "state": turn.state,
            "replies": len(turn.replies),
        },
    )
    return outcome


async def notify_guest(services: Services, pii: PiiKeys, outbox_id: int) -> str:
    """Tell the guest about a hold or reservation fact, once."""
    pool = services.pool
    async with pool.acquire() as conn:
        event = await conn.fetchrow(QUERIES["outbox_event"], outbox_id)
    payload = event["payload"] if event is not None else {}
    if not payload.get("conversation_id") or not payload.get("hold_id"):
        return "not_applicable"
    conversation_id = uuid.UUID(payload["conversation_id"])
    async with (
        store.leased(pool, conversation_id) as conv,
        pool.acquire() as conn,
        conn.transaction(),
    ):
        turn = await notify(conn, conv, event["event_type"], payload)
        await store.record_turn(conn, pii, conv, turn, f"outbox:{outbox_id}", inbound=False)
    return "notified" if turn.replies else "nothing_to_say"
