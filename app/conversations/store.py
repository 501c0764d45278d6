"""Where conversations are kept: the per-conversation lease, and writing a turn.

One task at a time works on a conversation: it takes the lease first (a concurrent task
gets Busy, 503, and Cloud Tasks retries it) and gives it back however it ends. A turn is
written in the caller's transaction: each reply with its send task (through the outbox,
keyed so a replayed task writes nothing twice), the staff's facts, and the new state.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from app.conversations.model import Conversation, Turn
from app.db import QUERIES
from app.errors import Busy
from app.inventory.properties import Property
from app.logging import correlation_id
from app.pii import PiiKeys
from app.tasks import outbox

# Longer than any turn takes (a quote, a hold and a Stripe call); a crashed task's lease
# lapses after it.
LEASE_SECONDS = 60


@asynccontextmanager
async def leased(pool: asyncpg.Pool, conversation_id: uuid.UUID) -> AsyncIterator[Conversation]:
    """The conversation, held by this task until the block ends; Busy if another holds it."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(QUERIES["lease_conversation"], conversation_id, LEASE_SECONDS)
        if row is None:
            raise Busy("another task is working on this conversation")
        prop = await conn.fetchrow(QUERIES["property_of_conversation"], conversation_id)
    try:
        yield Conversation(
            id=conversation_id,
            property=Property(**dict(prop)),
            state=row["state"],
            language=row["language"],
            context=row["context"],
        )
    finally:
        async with pool.acquire() as conn:
            await conn.execute(QUERIES["release_conversation"], conversation_id)


async def contact_of(
    conn: asyncpg.Connection, pii: PiiKeys, details: dict[str, Any], sender: str
) -> str:
    """The contact (its hash) a message's sender is, created when new; in the caller's
    transaction. One guest is one contact however they are addressed: a guest Evolution
    knows by their LID is the contact of their phone once a message carried it (earlier
    LID-only conversations move to it), and the LID's own contact until then."""
    contact = str(details["contact_hash"])
    lid_hash = details.get("lid_hash")
    if lid_hash is None:
        await conn.execute(QUERIES["upsert_contact"], contact, pii.encrypt(sender, "phone"))
        return contact
    await conn.execute(QUERIES["lock_alias"], lid_hash)
    known = await conn.fetchval(QUERIES["alias_contact"], lid_hash)
    if not details.get("phone_known") and known is not None:
        return str(known)
    # The sender is the phone when known, else the LID itself: replies go to it.
    await conn.execute(QUERIES["upsert_contact"], contact, pii.encrypt(sender, "phone"))
    if known is not None and known != contact:
        await conn.execute(QUERIES["adopt_conversations"], known, contact)
    await conn.execute(QUERIES["point_alias"], lid_hash, contact)
    return contact


async def insert_reply(
    conn: asyncpg.Connection,
    pii: PiiKeys,
    conversation_id: uuid.UUID,
    text: str,
    *,
    dedupe_key: str,
    template: dict[str, Any] | None = None,
    interactive: dict[str, Any] | None = None,
) -> uuid.UUID | None:
    """One outbound message and its send task; None when ``dedupe_key`` was written before."""
    message_id: uuid.UUID | None = await conn.fetchval(
        QUERIES["insert_message"],
        conversation_id,
        "out",
        pii.encrypt(text, "message"),
        None,
        dedupe_key,
        None,
        template,
        correlation_id.get(),
        interactive,
    )
    if message_id is not None:
        outbox.written(
            [
                await conn.fetchval(
                    QUERIES["queue_reply"], message_id, conversation_id, correlation_id.get()
                )
            ]
        )
    return message_id


async def insert_inbound(
    conn: asyncpg.Connection,
    pii: PiiKeys,
    conversation_id: uuid.UUID,
    text: str,
    *,
    provider_message_id: str,
    received_at: Any,
) -> None:
    await conn.execute(
        QUERIES["insert_message"],
        conversation_id,
        "in",
        pii.encrypt(text, "message"),
        provider_message_id,
        f"in:{provider_message_id}",
        received_at,
        None,
        correlation_id.get(),
        None,
    )


async def record_turn(
    conn: asyncpg.Connection,
    pii: PiiKeys,
    conv: Conversation,
    turn: Turn,
    key: str,
    *,
    inbound: bool,
) -> None:
    """The replies (each keyed ``<key>:<n>``), the staff's facts and the new state;
    ``inbound``: the guest wrote (their 24-hour window opens again)."""
    for n, text in enumerate(turn.replies):
        await insert_reply(
            conn,
            pii,
            conv.id,
            text,
            dedupe_key=f"{key}:{n}",
            template=turn.templates.get(n),
            interactive=turn.interactive.get(n),
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
        QUERIES["save_conversation"], conv.id, turn.state, turn.language, turn.context, inbound
    )
