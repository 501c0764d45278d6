"""Sending one queued reply through the inn's provider, at most once.

The reply's row is the delivery record: a send attempt first takes its lease (so two
concurrent runs of the task cannot both send), records that it is about to call the
provider (``attempt_started_at``), and a known outcome clears that again: a successful send
sets ``sent_at`` (so a later run finds it done). Graph 429/5xx and network errors give the
lease back and answer 503, so Cloud Tasks retries with backoff; any other 4xx is
permanent: recorded as failed, never retried.

An attempt whose outcome never got written (the worker died, or the answer was lost,
after the provider may have taken the message) is uncertain, and is not blindly repeated.
On Meta every send carries our message id as ``biz_opaque_callback_data``, which Graph
returns in the message's status webhooks; a ``sent`` or ``delivered`` status proves the
earlier attempt went out and records it (app/http/webhooks.py). So the next attempt waits
for that proof, answering 503 until ``send_proof_seconds`` after the uncertain attempt, and
only then sends again. An Evolution instance reports nothing of the kind, so there the wait
always ends in a second send: a reply whose answer was lost may reach the guest twice.

Inside the window, on Meta, a reply with a tap-to-choose form (the quote's options as a
list, yes/cancel as reply buttons) goes out as an interactive message; on Evolution, and
when its text is over Graph's 1,024-character body limit, as the plain text it also is.
Outside WhatsApp's 24-hour customer-service window (from the contact's last message) a
reply goes out as the inn's approved template for its kind (property file
``whatsapp.templates``: kind → language → template name), or, when it has none, is
recorded as undeliverable: never sent, never retried.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

import asyncpg
import httpx

from app.conversations.replies import DEFAULT_LANGUAGE
from app.db import QUERIES
from app.errors import Busy, Unavailable
from app.messaging import evolution, meta
from app.messaging.sending import SendOutcome
from app.pii import PiiKeys

log = logging.getLogger("app.messaging")


@dataclass(frozen=True)
class Secret:
    """A reply whose words are never stored: its text, and its template's parameters."""

    text: str = field(repr=False)
    parameters: list[str] = field(repr=False)


# Longer than one Graph call with its timeouts; a crashed attempt's lease lapses after it.
SEND_LEASE_SECONDS = 30


async def deliver(
    pool: asyncpg.Pool,
    pii: PiiKeys,
    graph: httpx.AsyncClient,
    token: str,
    message_id: uuid.UUID,
    proof_seconds: int,
    secret: Secret | None = None,
) -> str:
    """Send the queued reply ``message_id`` once. ``secret``: what goes out instead of the
    stored (redacted) body, and as the template's parameters (a console login code)."""
    async with pool.acquire() as conn:
        claimed = await conn.fetchrow(QUERIES["claim_outbound"], message_id, SEND_LEASE_SECONDS)
        state = None if claimed else await conn.fetchrow(QUERIES["outbound_state"], message_id)
        if claimed is not None and claimed["uncertain_for"] is not None:
            if claimed["uncertain_for"] < proof_seconds:
                await conn.execute(QUERIES["outbound_await_proof"], message_id)
                raise Busy("an earlier attempt may have gone out: waiting for its status")
            log.warning(
                "whatsapp_resend_unproven",
                extra={"message_id": str(message_id), "after_seconds": claimed["uncertain_for"]},
            )
        if claimed is not None:
            await conn.execute(QUERIES["outbound_attempt"], message_id)
    if claimed is None:
        if state is None:
            return "unknown_message"
        if state["status"] == "queued":
            raise Busy("another attempt is sending this message")
        return str(state["status"])  # already sent, delivered, read or failed
    outcome = await _send(claimed, pii, graph, token, message_id, secret)
    async with pool.acquire() as conn:
        if outcome.result == "undeliverable":
            await conn.execute(QUERIES["outbound_undeliverable"], message_id, outcome.error)
        elif outcome.result == "sent":
            await conn.execute(QUERIES["outbound_sent"], message_id, outcome.provider_message_id)
        elif outcome.result == "retry":
            await conn.execute(
                QUERIES["outbound_retry"], message_id, outcome.error, outcome.uncertain
            )
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


def _template(
    claimed: asyncpg.Record, text: str, parameters: list[str] | None
) -> tuple[str, str, list[str]] | None:
    """The inn's template for this reply in the contact's language, with its parameters;
    None when the reply has no template kind or the inn configured none for it."""
    template = claimed["template"]
    if template is None:
        return None
    language = claimed["language"] or DEFAULT_LANGUAGE
    names = (claimed["templates"] or {}).get(template["kind"]) or {}
    name = names.get(language) or names.get(DEFAULT_LANGUAGE)
    if not isinstance(name, str):
        return None
    # A staff notice has one parameter, the notice itself (it is not stored in clear).
    return name, language, parameters or list(template.get("parameters") or [text])


async def _send(
    claimed: asyncpg.Record,
    pii: PiiKeys,
    client: httpx.AsyncClient,
    token: str,
    message_id: uuid.UUID,
    secret: Secret | None,
) -> SendOutcome:
    """One attempt through the inn's provider: Evolution, or Meta's Graph API."""
    to = pii.decrypt(claimed["phone_encrypted"], "phone")
    text = secret.text if secret else pii.decrypt(claimed["body_encrypted"], "message")
    whatsapp = claimed["whatsapp"] or {}
    if whatsapp.get("provider") == "evolution":
        # A WhatsApp Web session: no customer-service window and no templates.
        api_key = pii.unseal(whatsapp["api_key_sealed"], "evolution:api_key")
        return await evolution.send_text(
            client, whatsapp["api_base"], whatsapp["instance"], api_key, to, text
        )
    number_id = claimed["whatsapp_phone_number_id"]
    if number_id is None:
        return SendOutcome("failed", error="the inn has no WhatsApp number")
    if claimed["window_open"]:
        interactive = claimed["interactive"]
        if interactive is not None and len(text) <= meta.MAX_INTERACTIVE_BODY:
            return await meta.send_interactive(
                client, token, number_id, to, text, interactive, message_id
            )
        return await meta.send_text(client, token, number_id, to, text, message_id)
    template = _template(claimed, text, secret.parameters if secret else None)
    if template is None:
        return SendOutcome("undeliverable", error="outside the 24-hour window")
    name, language, parameters = template
    return await meta.send_template(
        client, token, number_id, to, name, language, parameters, message_id
    )
