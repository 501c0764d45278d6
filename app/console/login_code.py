"""The worker's side of a console login: the code, opened from its task, sent to the staff
member through their inn's WhatsApp number. The message is stored redacted (the staff's
transcript shows that a code was sent, never which); outside the 24-hour window it goes
out as the inn's ``login_code`` template, the code its parameter."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from app.db import QUERIES
from app.logging import correlation_id
from app.messaging.delivery import Secret, deliver
from app.pii import PiiKeys, SealBroken

TEXT = "Seu código de acesso ao painel da {inn}: {code}. Vale por 10 minutos; não o repasse."
REDACTED = "••••••"


async def send_code(
    pool: asyncpg.Pool,
    pii: PiiKeys,
    graph: httpx.AsyncClient,
    token: str,
    proof_seconds: int,
    body: dict[str, Any],
) -> str:
    request_id = str(body["request_id"])
    try:
        code = pii.unseal(str(body["sealed"]), f"console-code:{request_id}")
    except SealBroken:
        return "unreadable"
    async with pool.acquire() as conn, conn.transaction():
        inn = await conn.fetchrow(QUERIES["property_of_id"], int(body["property_id"]))
        conversation_id = await conn.fetchval(
            QUERIES["upsert_conversation"], inn["id"], str(body["contact_hash"])
        )
        key = f"console-code:{request_id}"
        message_id: uuid.UUID | None = await conn.fetchval(
            QUERIES["insert_message"],
            conversation_id,
            "out",
            pii.encrypt(TEXT.format(inn=inn["name"], code=REDACTED), "message"),
            None,
            key,
            None,
            {"kind": "login_code"},
            correlation_id.get(),
            None,
        )
        if message_id is None:  # a retry of this task: the same message
            message_id = await conn.fetchval(QUERIES["message_by_dedupe_key"], key)
    assert message_id is not None
    secret = Secret(TEXT.format(inn=inn["name"], code=code), [code])
    return await deliver(pool, pii, graph, token, message_id, proof_seconds, secret)
