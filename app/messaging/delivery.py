"""Sending one queued reply through the Graph API, at most once.

The reply's row is the delivery record: a send attempt first takes its lease (so two
concurrent runs of the task cannot both send), and a successful send sets ``sent_at``
(so a later run finds it done). Graph 429/5xx and network errors give the lease back and
answer 503, so Cloud Tasks retries with backoff; any other 4xx is permanent: recorded as
failed, never retried.
"""

from __future__ import annotations

import logging
import uuid

import asyncpg
import httpx

from app.db import QUERIES
from app.errors import Busy, Unavailable
from app.messaging import meta
from app.pii import PiiKeys

log = logging.getLogger("app.messaging")

# Longer than one Graph call with its timeouts; a crashed attempt's lease lapses after it.
SEND_LEASE_SECONDS = 30


async def deliver(
    pool: asyncpg.Pool, pii: PiiKeys, graph: httpx.AsyncClient, token: str, message_id: uuid.UUID
) -> str:
    async with pool.acquire() as conn:
        claimed = await conn.fetchrow(QUERIES["claim_outbound"], message_id, SEND_LEASE_SECONDS)
        state = None if claimed else await conn.fetchrow(QUERIES["outbound_state"], message_id)
    if claimed is None:
        if state is None:
            return "unknown_message"
        if state["status"] == "queued":
            raise Busy("another attempt is sending this message")
        return str(state["status"])  # already sent, delivered, read or failed
    if claimed["whatsapp_phone_number_id"] is None:
        outcome = meta.SendOutcome("failed", error="the inn has no WhatsApp number")
    else:
        outcome = await meta.send_text(
            graph,
            token,
            claimed["whatsapp_phone_number_id"],
            pii.decrypt(claimed["phone_encrypted"], "phone"),
            pii.decrypt(claimed["body_encrypted"], "message"),
        )
    async with pool.acquire() as conn:
        if outcome.result == "sent":
            await conn.execute(QUERIES["outbound_sent"], message_id, outcome.provider_message_id)
        elif outcome.result == "retry":
            await conn.execute(QUERIES["outbound_retry"], message_id, outcome.error)
        else:
            await conn.execute(QUERIES["outbound_failed"], message_id, outcome.error)
    log.log(
        logging.INFO if outcome.result == "sent" else logging.WARNING,
        "whatsapp_send",
        extra={"message_id": str(message_id), "result": outcome.result, "error": outcome.error},
    )
    if outcome.result == "retry":
        raise Unavailable(f"Graph API: {outcome.error}")
    return outcome.result
