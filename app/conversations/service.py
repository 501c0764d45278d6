"""The worker's conversation tasks: one inbound message, or one fact the guest must hear.

Each task takes the conversation's lease first, so two tasks never interleave in one
conversation (the second answers 503 and Cloud Tasks retries it), then records its turn
in one transaction: the inbound message, the replies with their outbox rows, the new
state and the receipt's outcome. Replies are keyed by what produced them, so a replayed
task writes and sends nothing twice.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import asyncpg
import orjson

from app.conversations.engine import Conversation, Services, Turn, notify, respond
from app.conversations.replies import DEFAULT_LANGUAGE
from app.conversations.staff import staff_command
from app.db import QUERIES
from app.errors import AppError, Busy
from app.inventory.quote import Property
from app.logging import annotate_request, correlation_id
from app.pii import PiiKeys, SealBroken
from app.tasks import outbox

log = logging.getLogger("app.conversations")

# Longer than any turn takes (a quote, a hold and a Stripe call); a crashed task's lease
# lapses after it.
LEASE_SECONDS = 60


async def _lease(conn: asyncpg.Connection, conversation_id: uuid.UUID) -> Conversation:
    row = await conn.fetchrow(QUERIES["lease_conversation"], conversation_id, LEASE_SECONDS)
    if row is None:
        raise Busy("another task is working on this conversation")
    prop = await conn.fetchrow(QUERIES["property_of_conversation"], conversation_id)
    return Conversation(
        id=conversation_id,
        property=Property(**dict(prop)),
        state=row["state"],
        language=row["language"],
        context=row["context"],
    )


async def _record_turn(
    conn: asyncpg.Connection,
    pii: PiiKeys,
    conv: Conversation,
    turn: Turn,
    key: str,
    inbound_at: bool,
) -> None:
    """The replies (each keyed ``<key>:<n>``) with their send tasks, and the new state."""
    for n, text in enumerate(turn.replies):
        message_id = await conn.fetchval(
            QUERIES["insert_message"],
            conv.id,
            "out",
            pii.encrypt(text, "message"),
            None,
            f"{key}:{n}",
            None,
            turn.templates.get(n),
            correlation_id.get(),
        )
        if message_id is not None:
            outbox.written(
                [
                    await conn.fetchval(
                        QUERIES["queue_reply"], message_id, conv.id, correlation_id.get()
                    )
                ]
            )
    for event_type, payload in turn.facts:
        outbox.written(
            [
                await conn.fetchval(
                    QUERIES["insert_fact"], event_type, conv.id, payload, correlation_id.get()
                )
            ]
        )
    await conn.execute(
        QUERIES["save_conversation"], conv.id, turn.state, turn.language, turn.context, inbound_at
    )


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
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            QUERIES["upsert_contact"], details["contact_hash"], pii.encrypt(opened["from"], "phone")
        )
        conversation_id = await conn.fetchval(
            QUERIES["upsert_conversation"], details["property_id"], details["contact_hash"]
        )
    async with pool.acquire() as conn:
        conv = await _lease(conn, conversation_id)
    try:
        async with pool.acquire() as conn:
            # Under the lease: a duplicate task that waited for it finds the work done.
            receipt = await conn.fetchrow(QUERIES["receipt_for_task"], "whatsapp", event_id)
        if receipt["processed_at"] is not None:
            return str(receipt["outcome"])
        try:
            if await _is_staff(pool, conv, details["contact_hash"]):
                turn = await staff_command(services, conv, opened["text"])
            else:
                turn = await respond(services, conv, opened["text"], event_id)
        except AppError as exc:
            if exc.status >= 500:
                raise  # retryable: Cloud Tasks tries the whole turn again
            # Permanent for this message (a retry would meet the same refusal): say so
            # rather than answer the task 4xx, which Cloud Tasks would retry for ever.
            log.warning("whatsapp_turn_refused", extra={"event_id": event_id, "error": exc.code})
            turn = Turn(conv.language or DEFAULT_LANGUAGE, conv.state, conv.context)
            turn.say("failed")
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                QUERIES["insert_message"],
                conv.id,
                "in",
                pii.encrypt(opened["text"], "message"),
                event_id,
                f"in:{event_id}",
                receipt["received_at"],
                None,
                correlation_id.get(),
            )
            await _record_turn(conn, pii, conv, turn, event_id, inbound_at=True)
            await conn.execute(QUERIES["finish_receipt"], "whatsapp", event_id, "answered")
    finally:
        async with pool.acquire() as conn:
            await conn.execute(QUERIES["release_conversation"], conversation_id)
    log.info(
        "whatsapp_message_answered",
        extra={"event_id": event_id, "state": turn.state, "replies": len(turn.replies)},
    )
    return "answered"


async def notify_guest(services: Services, pii: PiiKeys, outbox_id: int) -> str:
    """Tell the guest about a hold or reservation fact, once."""
    pool = services.pool
    async with pool.acquire() as conn:
        event = await conn.fetchrow(QUERIES["outbox_event"], outbox_id)
    payload = event["payload"] if event is not None else {}
    if not payload.get("conversation_id") or not payload.get("hold_id"):
        return "not_applicable"
    conversation_id = uuid.UUID(payload["conversation_id"])
    async with pool.acquire() as conn:
        conv = await _lease(conn, conversation_id)
    try:
        async with pool.acquire() as conn, conn.transaction():
            turn = await notify(conn, conv, event["event_type"], payload)
            await _record_turn(conn, pii, conv, turn, f"outbox:{outbox_id}", inbound_at=False)
    finally:
        async with pool.acquire() as conn:
            await conn.execute(QUERIES["release_conversation"], conversation_id)
    return "notified" if turn.replies else "nothing_to_say"
