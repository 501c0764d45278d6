"""Sending a guest the payment link of their active hold again: the same Checkout Session
while it is open; a new one only when it expired, the hold then kept HOLD_TTL_SECONDS
from now (never shortened). Stripe is called with no transaction open."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import stripe

from app.backoffice.runner import Scope, audit, shown
from app.conversations import replies, store
from app.db import QUERIES
from app.errors import BadRequest, Conflict, NotFound, Unavailable
from app.logging import correlation_id
from app.payments.checkout import create_checkout_session
from app.pii import PiiKeys
from app.settings import Settings

COMMAND = "hold.resend_link"
# A session closing sooner than this is not worth sending again.
MIN_LEFT = dt.timedelta(minutes=5)


async def resend_link(
    conn: asyncpg.Connection,
    scope: Scope,
    client: stripe.StripeClient,
    settings: Settings,
    pii: PiiKeys,
    *,
    hold: str | None = None,
    phone: str | None = None,
    execute: bool = False,
) -> dict[str, Any]:
    """Preview or send the link of the hold named by (a prefix of) its id or by the
    guest's number. The number is never recorded: the audit names the hold."""
    if (hold is None) == (phone is None):
        raise BadRequest("name the hold or the guest's number")
    contact = pii.contact_hash(phone) if phone else None
    row = await conn.fetchrow(QUERIES["hold_for_link"], scope.property.id, hold or "", contact)
    arguments = {"hold": hold, "by_phone": phone is not None}
    if row is None:
        await audit(conn, scope, COMMAND, arguments, {"error": "not_found"})
        raise NotFound("no active hold for that guest at this inn")
    now = dt.datetime.now(dt.UTC)
    session = None
    if row["session_id"]:
        try:
            session = await client.v1.checkout.sessions.retrieve_async(row["session_id"])
        except stripe.StripeError as exc:
            raise Unavailable(f"Stripe: {type(exc).__name__}") from None
    open_ = (
        session is not None
        and session.status == "open"
        and dt.datetime.fromtimestamp(session.expires_at, dt.UTC) > now + MIN_LEFT
    )
    extended = max(row["expires_at"], now + dt.timedelta(seconds=settings.hold_ttl_seconds))
    effect = {
        "hold_ref": str(row["id"])[:8],
        "session": "same" if open_ else "new",
        "hold_expires_at": row["expires_at"] if open_ else extended,
    }
    if not execute:
        return {"outcome": "preview", **shown(COMMAND, effect)}
    if open_:
        assert session is not None
        url, closes = session.url or "", dt.datetime.fromtimestamp(session.expires_at, dt.UTC)
    else:
        async with conn.transaction():
            if await conn.fetchval(QUERIES["extend_hold"], row["id"], extended) is None:
                raise Conflict("the hold ended meanwhile")
        checkout = await create_checkout_session(
            client, conn, row["id"], settings, renewal=row["sessions"]
        )
        url, closes = checkout.url, checkout.expires_at
    lang = row["language"] or replies.DEFAULT_LANGUAGE
    async with conn.transaction():
        if row["conversation_id"] is not None:
            text = replies.render(
                "payment_link_again",
                lang,
                checkin=replies.day(row["checkin"], lang),
                checkout=replies.day(row["checkout"], lang),
                total=replies.money(row["total_cents"], row["currency"], lang),
                deadline=replies.moment(closes.astimezone(ZoneInfo(scope.property.timezone)), lang),
                url=url,
            )
            await store.insert_reply(
                conn,
                pii,
                row["conversation_id"],
                text,
                dedupe_key=f"link:{row['id']}:{correlation_id.get()}",
            )
        result = {**effect, "outcome": "sent" if row["conversation_id"] else "no_conversation"}
        await audit(conn, scope, COMMAND, arguments, result)
    return {**result, "url": url}
