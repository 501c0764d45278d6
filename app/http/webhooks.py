"""Provider webhooks (public role): verify, record the receipt, enqueue, then answer."""

from __future__ import annotations

import hmac
import logging

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse

from app.db import QUERIES
from app.errors import Forbidden
from app.http.body import read_capped, require_json
from app.http.deps import Deps, deps
from app.logging import annotate_request, correlation_id
from app.messaging import evolution, meta
from app.messaging.inbound import InboundMessage
from app.ops.pause import Provider
from app.payments.stripe_events import incoming, verify_event
from app.tasks import catalog
from app.tasks.receipts import Incoming, accept

log = logging.getLogger("app.webhooks")

# Stripe events are a few KiB; anything this large is not one.
STRIPE_MAX_BODY = 256 * 1024
# While a provider is paused (ops pause): a minute is the hint. Stripe and Meta retry on
# their own backoff schedules (Stripe for up to three days) whatever it says; another
# client learns not to hammer a webhook that will stay shut for a while.
PAUSED_RETRY_AFTER_SECONDS = "60"


async def _paused(d: Deps, provider: Provider) -> JSONResponse | None:
    """The answer while ``provider`` is paused: 503 before anything is read or written.
    The request's own line says why; nothing else is logged."""
    if provider not in await d.pauses.paused(d.pool):
        return None
    annotate_request(reason="provider_paused", provider=provider)
    return JSONResponse(
        {"error": "provider_paused"},
        status_code=503,
        headers={"Retry-After": PAUSED_RETRY_AFTER_SECONDS},
    )


async def stripe_webhook(request: Request) -> JSONResponse:
    """POST /webhooks/stripe: 200 only once the receipt is committed and its task exists."""
    d = deps(request)
    if (paused := await _paused(d, "stripe")) is not None:
        return paused
    require_json(request)
    body = await read_capped(request, STRIPE_MAX_BODY)
    assert d.settings.stripe_webhook_secret is not None
    event = verify_event(
        body, request.headers.get("stripe-signature"), d.settings.stripe_webhook_secret.reveal()
    )
    receipt = incoming(event)
    # The Checkout Session carries the correlation id of the hold it pays for: the event's
    # task continues that story, and this request's line names it.
    if receipt.correlation is not None and receipt.correlation != correlation_id.get():
        annotate_request(linked_correlation_id=receipt.correlation)
    outcome = await accept(d.pool, d.queue, d.marks, receipt, d.settings.receipt_redrive_seconds)
    return JSONResponse({"received": True, "outcome": outcome})


async def whatsapp_meta_handshake(request: Request) -> PlainTextResponse:
    """GET /webhooks/whatsapp/meta: Meta's subscription check echoes hub.challenge."""
    d = deps(request)
    params = request.query_params
    assert d.settings.whatsapp_verify_token is not None
    expected = d.settings.whatsapp_verify_token.reveal()
    token = params.get("hub.verify_token", "")
    if params.get("hub.mode") != "subscribe" or not hmac.compare_digest(
        token.encode(), expected.encode()
    ):
        raise Forbidden("verification token mismatch")
    return PlainTextResponse(params.get("hub.challenge", ""))


async def whatsapp_meta(request: Request) -> JSONResponse:
    """POST /webhooks/whatsapp/meta: one receipt and one task per message; statuses recorded."""
    d = deps(request)
    if (paused := await _paused(d, "whatsapp")) is not None:
        return paused
    body = await read_capped(request, meta.MAX_BODY)
    assert d.settings.whatsapp_app_secret is not None
    meta.verify_signature(
        body, request.headers.get("x-hub-signature-256"), d.settings.whatsapp_app_secret.reveal()
    )
    require_json(request)
    envelope = meta.parse_envelope(body)
    outcomes: dict[str, int] = {}
    async with d.pool.acquire() as conn:
        properties = {
            number_id: await conn.fetchval(QUERIES["property_by_phone_number_id"], number_id)
            for number_id in {message.phone_number_id for message in envelope.messages}
        }
        for status in envelope.statuses:
            await conn.execute(
                QUERIES["record_message_status"],
                status.message_id,
                status.status,
                status.error_code,
                status.ours,
            )
    for message in envelope.messages:
        property_id = properties[message.phone_number_id]
        if property_id is None:
            # Meta retries a non-2xx for days; the id names the misconfigured number.
            log.warning(
                "whatsapp_unknown_number", extra={"phone_number_id": message.phone_number_id}
            )
            outcome = "unknown_number"
        else:
            outcome = await accept(
                d.pool,
                d.queue,
                d.marks,
                _whatsapp_incoming(d, property_id, message),
                d.settings.receipt_redrive_seconds,
            )
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    annotate_request(messages=len(envelope.messages), statuses=len(envelope.statuses))
    return JSONResponse({"received": True, "outcomes": outcomes})


def _whatsapp_incoming(d: Deps, property_id: int, message: InboundMessage) -> Incoming:
    # The number (or LID), the text and where a voice note's audio is travel sealed, bound
    # to this message id; the rest is PII-free: hashes, and how the message is read.
    opened = {"from": message.sender, "text": message.text, "media": message.media}
    sealed = d.pii.seal(orjson.dumps(opened).decode(), f"whatsapp:{message.message_id}")
    details = {
        "property_id": property_id,
        "contact_hash": d.pii.contact_hash(message.sender),
        "reading": message.reading,
        "sealed": sealed,
    }
    if message.lid is not None:
        details["lid_hash"] = d.pii.contact_hash(message.lid)
        details["phone_known"] = message.sender != message.lid
    return Incoming(
        source="whatsapp",
        external_id=message.message_id,
        event_type=f"message.{message.kind}",
        details=details,
        kind=catalog.WHATSAPP_MESSAGE,
    )


async def whatsapp_evolution(request: Request) -> JSONResponse:
    """POST /webhooks/whatsapp/evolution: a guest's new message becomes a receipt and a task;
    every other event of an authentic instance is acknowledged and ignored."""
    d = deps(request)
    if (paused := await _paused(d, "whatsapp")) is not None:
        return paused
    body = await read_capped(request, evolution.MAX_BODY)
    require_json(request)
    event = evolution.parse_event(body)
    async with d.pool.acquire() as conn:
        inn = await conn.fetchrow(QUERIES["property_by_instance"], event.instance)
    sealed = inn["webhook_secret_sealed"] if inn is not None else None
    expected = d.pii.unseal(sealed, "evolution:webhook_secret") if sealed else None
    evolution.verify_secret(request.headers.get(evolution.SECRET_HEADER), expected)
    assert inn is not None
    if event.message is None:
        annotate_request(outcome="ignored")
        return JSONResponse({"received": True, "outcome": "ignored"})
    outcome = await accept(
        d.pool,
        d.queue,
        d.marks,
        _whatsapp_incoming(d, inn["id"], event.message),
        d.settings.receipt_redrive_seconds,
    )
    return JSONResponse({"received": True, "outcome": outcome})
