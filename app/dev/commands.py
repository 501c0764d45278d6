"""`dev` commands against a running `make run`: hold nights, pay as Stripe would, talk as a
guest on WhatsApp would and read the conversation back."""

from __future__ import annotations

import argparse
import re
import uuid
from typing import Any

import asyncpg
import httpx
import orjson
import stripe

from app import db
from app.channels.calendars import IMPORT_URL_PURPOSE
from app.db import QUERIES
from app.dev.fake_evolution import upsert_event
from app.dev.fake_graph import inbound_envelope, signature
from app.dev.fake_stripe import event
from app.errors import AppError, BadRequest, NotFound, Unavailable
from app.inventory.holds import HoldRequest, Unit
from app.inventory.properties import get_property
from app.inventory.stay import Party, Stay
from app.payments.booking import hold_and_checkout
from app.payments.stripe_api import open_stripe
from app.pii import pii_keys
from app.settings import Settings
from app.tasks.catalog import CHANNEL_SYNC
from app.tasks.outbox import relaying
from app.tasks.queue import TaskQueue, queue_config

# The inns `make run` imports (docs/examples/), by provider.
DEV_PROPERTIES = {"meta": "pousada-mare-alta", "evolution": "pousada-recanto-evo"}
# make run's services answer locally within milliseconds.
DEV_HTTP_TIMEOUT = 10.0


async def dev_hold(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """Hold the nights and open the Checkout Session, as a guest's "yes" would."""
    # One connection, as for every command but serve.
    pool = await db.create_pool(settings.database_url.reveal(), 1)
    queue = TaskQueue(queue_config(settings))
    stripe_api = open_stripe(settings)
    try:
        async with pool.acquire() as conn:
            prop = await get_property(conn, args.property)
            room_type_id = await conn.fetchval(QUERIES["room_type_id"], prop.id, args.room_type)
        if room_type_id is None:
            raise NotFound(f"no room type {args.room_type!r} in {args.property!r}")
        party = Party(args.adults or args.guests, tuple(args.children_ages))
        request = HoldRequest(
            property_id=prop.id,
            stay=Stay(args.checkin, args.checkout, party.guests),
            units=(Unit(room_type_id, party),),
            idempotency_key=args.idempotency_key or f"dev-{uuid.uuid4().hex}",
        )
        async with relaying(pool, queue):  # the expire task, as after a guest's "yes"
            booking = await hold_and_checkout(pool, stripe_api.client, settings, request)
    finally:
        await stripe_api.close()
        await queue.close()
        await pool.close()
    return {
        "hold_id": str(booking.hold.id),
        "checkout_session_id": booking.checkout.id,
        "checkout_url": booking.checkout.url,
        "expires_at": booking.hold.expires_at.isoformat(),
        "amount_total": booking.hold.total_cents,
        "currency": booking.hold.currency.lower(),
    }


async def dev_pay(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """Complete the hold's Checkout Session in the fake Stripe and deliver the signed
    checkout.session.completed to the public webhook, as Stripe would."""
    session_id: str | None = args.hold_id
    if not args.hold_id.startswith("cs_"):  # else the session id from a payment link
        try:
            hold_id = uuid.UUID(args.hold_id)
        except ValueError:
            raise BadRequest("expected a hold id or a cs_… Checkout Session id") from None
        conn: asyncpg.Connection = await db.connect(settings.database_url.reveal())
        try:
            session_id = await conn.fetchval(QUERIES["payment_session_for_hold"], hold_id)
        finally:
            await conn.close()
    if session_id is None:
        raise NotFound("that hold has no Checkout Session")
    assert settings.stripe_webhook_secret is not None
    async with httpx.AsyncClient(timeout=DEV_HTTP_TIMEOUT) as http:
        try:
            completed = await http.post(
                f"{settings.stripe_api_base}/_dev/checkout/sessions/{session_id}/complete",
                params={"payment_status": args.payment_status},
            )
            if completed.status_code == 404:
                raise NotFound(f"the fake Stripe has no session {session_id}")
            completed.raise_for_status()
            payload = event("checkout.session.completed", completed.json())
            signature = stripe.WebhookSignature.generate_signature_header(
                payload.decode(), settings.stripe_webhook_secret.reveal()
            )
            answer = await http.post(
                f"{settings.public_url}/webhooks/stripe",
                content=payload,
                headers={"Content-Type": "application/json", "Stripe-Signature": signature},
            )
        except httpx.HTTPError as exc:
            raise Unavailable(f"local stack unreachable: {type(exc).__name__}") from None
    if not answer.is_success:
        raise WebhookRefused(f"the webhook answered {answer.status_code}")
    return {"event_id": orjson.loads(payload)["id"], "webhook_status": answer.status_code}


class WebhookRefused(AppError):
    """The webhook did not acknowledge the event."""

    status = 502
    code = "webhook_refused"


async def dev_whatsapp(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """Post a guest's text to the public webhook as the inn's provider would: a Meta
    envelope signed with the app secret, or an Evolution event with the instance's secret."""
    conn: asyncpg.Connection = await db.connect(settings.database_url.reveal())
    try:
        prop = await get_property(conn, args.property or DEV_PROPERTIES[args.provider])
    finally:
        await conn.close()
    whatsapp = prop.settings.get("whatsapp", {})
    if whatsapp.get("provider", "meta") != args.provider:
        raise BadRequest(f"{prop.code!r} does not use {args.provider}")
    sender = re.sub(r"\D", "", args.sender)  # both send the number as digits only
    if args.provider == "evolution":
        secret = pii_keys(settings).unseal(
            whatsapp["webhook_secret_sealed"], "evolution:webhook_secret"
        )
        event = upsert_event(whatsapp["instance"], sender, args.text)
        payload = orjson.dumps(event)
        path, headers = "evolution", {"X-Webhook-Secret": secret}
        message_id = event["data"]["key"]["id"]
    else:
        if prop.whatsapp_phone_number_id is None:
            raise NotFound(f"{prop.code!r} has no WhatsApp number")
        envelope = inbound_envelope(prop.whatsapp_phone_number_id, sender, args.text)
        payload = orjson.dumps(envelope)
        assert settings.whatsapp_app_secret is not None
        secret = settings.whatsapp_app_secret.reveal()
        path, headers = "meta", {"X-Hub-Signature-256": signature(payload, secret)}
        message_id = envelope["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    async with httpx.AsyncClient(timeout=DEV_HTTP_TIMEOUT) as http:
        try:
            answer = await http.post(
                f"{settings.public_url}/webhooks/whatsapp/{path}",
                content=payload,
                headers={"Content-Type": "application/json", **headers},
            )
        except httpx.HTTPError as exc:
            raise Unavailable(f"local stack unreachable: {type(exc).__name__}") from None
    if not answer.is_success:
        raise WebhookRefused(f"the webhook answered {answer.status_code}")
    return {"message_id": message_id, "webhook_status": answer.status_code}


async def dev_console_session(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """A console session for a staff number, as if it had logged in: its cookie."""
    from app.console import auth

    digits = auth.e164_digits(args.phone)
    if digits is None:
        raise BadRequest(f"not a phone number: {args.phone!r}")
    contact = pii_keys(settings).contact_hash(digits)
    conn: asyncpg.Connection = await db.connect(settings.database_url.reveal())
    try:
        if not await conn.fetch(QUERIES["console_staff_inns"], contact):
            raise NotFound("that number is no inn's staff")
        session = await auth.open_session(conn, contact)
    finally:
        await conn.close()
    return {"cookie": f"{auth.COOKIE}={session}"}


async def dev_transcript(settings: Settings, args: argparse.Namespace) -> list[str]:
    """The guest's conversation, oldest first: ``<ISO time> in|out <text>`` per message."""
    pii = pii_keys(settings)
    conn: asyncpg.Connection = await db.connect(settings.database_url.reveal())
    try:
        rows = await conn.fetch(QUERIES["transcript"], pii.contact_hash(args.sender))
    finally:
        await conn.close()
    # One line per message: a multi-line reply (a quote) shows its breaks as "\n".
    return [
        f"{row['created_at'].isoformat()} {row['direction']} "
        + pii.decrypt(row["body_encrypted"], "message").replace("\n", "\\n")
        for row in rows
    ]


async def _channel_feed(settings: Settings, args: argparse.Namespace) -> str:
    """The fake channel's URL of the calendar's feed (its import URL, unsealed)."""
    conn: asyncpg.Connection = await db.connect(settings.database_url.reveal())
    try:
        row = await conn.fetchrow(QUERIES["calendar_import_url"], args.property, args.calendar)
    finally:
        await conn.close()
    if row is None:
        raise NotFound(f"no calendar {args.calendar!r} in {args.property!r}")
    if row["import_url_sealed"] is None:
        raise BadRequest(f"{args.calendar!r} is export-only: it has no channel feed")
    return str(pii_keys(settings).unseal(row["import_url_sealed"], IMPORT_URL_PURPOSE))


async def _fake_channel(method: str, url: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=DEV_HTTP_TIMEOUT) as http:
        try:
            return await http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(f"the fake channel is unreachable: {type(exc).__name__}") from None


async def dev_channel_book(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """A booking made on the channel: an event in the fake channel's feed of the calendar."""
    feed = await _channel_feed(settings, args)
    events = feed.replace("/ical/", "/_dev/calendars/").removesuffix(".ics") + "/events"
    body = {"checkin": args.checkin.isoformat(), "checkout": args.checkout.isoformat()}
    answer = await _fake_channel("POST", events, json=body)
    if answer.status_code != 200:
        raise BadRequest(answer.json().get("error", "the fake channel refused the booking"))
    return {"calendar": args.calendar, "uid": answer.json()["uid"]}


async def dev_channel_cancel(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """The booking cancelled on the channel: its event leaves the feed."""
    feed = await _channel_feed(settings, args)
    event = feed.replace("/ical/", "/_dev/calendars/").removesuffix(".ics") + f"/events/{args.uid}"
    answer = await _fake_channel("DELETE", event)
    if answer.status_code == 404:
        raise NotFound(f"no event {args.uid!r} in {args.calendar!r}")
    return {"calendar": args.calendar, "uid": args.uid, "cancelled": True}


async def dev_channels_sync(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """Sync the calendars now, through the task path, under task names of its own (a slot
    the schedule already synced would swallow its name)."""
    conn: asyncpg.Connection = await db.connect(settings.database_url.reveal())
    try:
        calendars = [r["id"] for r in await conn.fetch(QUERIES["calendars_to_sync"], args.property)]
    finally:
        await conn.close()
    queue = TaskQueue(queue_config(settings))
    try:
        kind = CHANNEL_SYNC
        for calendar_id in calendars:
            name = kind.task_name(f"{calendar_id}-dev-{uuid.uuid4().hex[:12]}")
            await queue.enqueue(kind, name, {"calendar_id": calendar_id})
    finally:
        await queue.close()
    return {"enqueued": len(calendars)}


async def dev_stripe_refund(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """Refund a payment in the fake Stripe as its dashboard would, and deliver the signed
    charge.refunded to the public webhook."""
    query = {"amount": str(args.amount)} if args.amount is not None else {}
    return await _stripe_dev_event(settings, args.payment_id, "refund", query)


async def dev_stripe_dispute(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """Open a dispute of a payment in the fake Stripe (or, with --close, decide its latest
    one) and deliver the signed charge.dispute.created (closed) to the public webhook."""
    if args.close is not None:
        return await _stripe_dev_event(
            settings, args.payment_id, "dispute/close", {"status": args.close}
        )
    return await _stripe_dev_event(settings, args.payment_id, "dispute", {})


async def _stripe_dev_event(
    settings: Settings, payment_id: str, action: str, query: dict[str, str]
) -> dict[str, Any]:
    """Ask the fake Stripe for an event about the payment's intent; sign and deliver it."""
    try:
        payment = uuid.UUID(payment_id)
    except ValueError:
        raise BadRequest("expected a payment id (payments.id)") from None
    conn: asyncpg.Connection = await db.connect(settings.database_url.reveal())
    try:
        intent = await conn.fetchval(QUERIES["stripe_intent_of_payment"], payment)
    finally:
        await conn.close()
    if intent is None:
        raise NotFound("no Stripe payment with a payment intent has that id")
    assert settings.stripe_webhook_secret is not None
    async with httpx.AsyncClient(timeout=DEV_HTTP_TIMEOUT) as http:
        try:
            made = await http.post(
                f"{settings.stripe_api_base}/_dev/payment_intents/{intent}/{action}",
                params=query,
            )
            if made.status_code in (400, 404):
                raise BadRequest(made.json()["error"]["message"])
            made.raise_for_status()
            payload = orjson.dumps(made.json())
            signature = stripe.WebhookSignature.generate_signature_header(
                payload.decode(), settings.stripe_webhook_secret.reveal()
            )
            answer = await http.post(
                f"{settings.public_url}/webhooks/stripe",
                content=payload,
                headers={"Content-Type": "application/json", "Stripe-Signature": signature},
            )
        except httpx.HTTPError as exc:
            raise Unavailable(f"local stack unreachable: {type(exc).__name__}") from None
    if not answer.is_success:
        raise WebhookRefused(f"the webhook answered {answer.status_code}")
    sent = orjson.loads(payload)
    obj = sent["data"]["object"]
    return {
        "event_id": sent["id"],
        "event_type": sent["type"],
        "object_id": obj["id"],
        "status": obj.get("status"),
        "amount": obj.get("amount"),
        "amount_refunded": obj.get("amount_refunded"),
        "webhook_status": answer.status_code,
    }
