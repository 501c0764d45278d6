"""Recover Stripe events our webhook never took (runbook §7.3): a wrong webhook secret, a
webhook answering 5xx for longer than Stripe kept retrying, a pause.

Stripe's Events API lists the events whose delivery has not succeeded
(``delivery_success=false``) since a moment, of the types we handle. Each is fed through
the webhook's own receipt path (``stripe_events.incoming`` then ``receipts.accept``): the
receipt recorded once by its event id, its task enqueued under the event's task name. An
event we already have a receipt of is skipped: the webhook took it (Stripe may still
count an earlier failed delivery), and a receipt whose task was lost is the re-drive's
and ``ops reprocess``'s. So a second run records nothing new. The API is called with our
secret key, so what it lists needs no signature.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import asyncpg
import stripe

from app.db import QUERIES
from app.errors import BadRequest, Conflict, Unavailable
from app.payments.stripe_events import HANDLED_TYPES, incoming
from app.settings import Settings
from app.tasks.enqueued_marks import EnqueuedMarks
from app.tasks.queue import TaskQueue
from app.tasks.receipts import accept

# Stripe lists the events of the last 30 days only.
MAX_SINCE = dt.timedelta(days=30)
# The largest page Stripe serves: fewest round trips.
PAGE_SIZE = 100
_SINCE = re.compile(r"^([1-9][0-9]*)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


class StripePaused(Conflict):
    """Stripe is paused (ops pause): resume it before feeding its events in."""

    code = "provider_paused"


def parse_since(text: str) -> dt.timedelta:
    """``3d``, ``12h`` or ``90m``: how far back to look, at most 30 days."""
    match = _SINCE.match(text)
    if match is None:
        raise BadRequest(f"--since {text!r}: expected a duration like 3d, 12h or 90m")
    since = dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if since > MAX_SINCE:
        raise BadRequest("--since: Stripe lists the events of the last 30 days only")
    return since


async def undelivered_events(
    client: stripe.StripeClient, since: dt.datetime
) -> list[dict[str, Any]]:
    """Every event of a handled type created since ``since`` that Stripe has not delivered,
    oldest first (the order they happened in), through every page."""
    try:
        page = await client.v1.events.list_async(
            params={
                "delivery_success": False,
                "created": {"gte": int(since.timestamp())},
                "types": sorted(HANDLED_TYPES),
                "limit": PAGE_SIZE,
            }
        )
        listed = [event.to_dict() async for event in page.auto_paging_iter()]
    except stripe.StripeError as exc:
        raise Unavailable(f"Stripe's Events API failed: {type(exc).__name__}") from None
    # Stripe lists newest first; a stable sort keeps its order among events of one second.
    return sorted(reversed(listed), key=lambda event: event["created"])


async def backfill(
    pool: asyncpg.Pool,
    queue: TaskQueue,
    client: stripe.StripeClient,
    settings: Settings,
    since: dt.timedelta,
    *,
    execute: bool = False,
) -> list[dict[str, Any]]:
    """Each undelivered event (id, type, created, whether we have its receipt) and, when
    ``execute``, what the receipt path did with the ones we had not (``outcome``)."""
    events = await undelivered_events(client, dt.datetime.now(dt.UTC) - since)
    async with pool.acquire() as conn:
        if execute and await conn.fetchrow(QUERIES["provider_pause"], "stripe") is not None:
            raise StripePaused
        rows = await conn.fetch(QUERIES["stripe_receipts_among"], [e["id"] for e in events])
    received = {row["external_id"] for row in rows}
    marks = EnqueuedMarks(pool)
    listed = []
    for event in events:
        item: dict[str, Any] = {
            "event_id": event["id"],
            "type": event["type"],
            "created": dt.datetime.fromtimestamp(event["created"], dt.UTC).isoformat(),
            "received": event["id"] in received,
        }
        if execute and not item["received"]:
            receipt = incoming(event)
            item["outcome"] = await accept(
                pool, queue, marks, receipt, settings.receipt_redrive_seconds
            )
        listed.append(item)
    return listed
