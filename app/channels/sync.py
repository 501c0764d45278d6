"""Importing a channel's calendar: fetch its feed, read it, apply it — or, when the feed
cannot be had, record why and change nothing (a failed fetch never releases inventory).

A feed that was had and read is authoritative: its events are the channel's blocks, and
events absent from it are released. An event that is not a reservation, covering only
nights our own feed showed that channel closed when it last fetched it, is an echo of our
feed: stored as such, taking nothing, never a conflict (Airbnb's "Not available",
Booking.com's "CLOSED - Not available"). Feed failures are the channel's, not ours: the
task answers 2xx and the schedule tries again; only our own database failing is a 5xx.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from app.channels.calendars import IMPORT_URL_PURPOSE
from app.channels.feed import Event, parse
from app.channels.fetch import FeedError, Fetcher
from app.db import QUERIES
from app.logging import correlation_id
from app.pii import PiiKeys
from app.tasks import outbox

log = logging.getLogger("app.channels")

# The whole fetch, redirects and a slow trickle of bytes included.
FETCH_DEADLINE_SECONDS = 30


def is_echo(event: Event, shown_closed: set[dt.date]) -> bool:
    nights = (
        event.checkin + dt.timedelta(days=i) for i in range((event.checkout - event.checkin).days)
    )
    return not event.reservation and all(night in shown_closed for night in nights)


async def sync_calendar(
    pool: asyncpg.Pool, pii: PiiKeys, fetcher: Fetcher, calendar_id: int
) -> dict[str, Any]:
    async with pool.acquire() as conn:
        calendar = await conn.fetchrow(QUERIES["calendar_to_sync"], calendar_id)
    if calendar is None:
        return {"outcome": "unknown_calendar"}
    if calendar["import_url_sealed"] is None:
        return {"outcome": "export_only"}
    url = pii.unseal(calendar["import_url_sealed"], IMPORT_URL_PURPOSE)
    # An open conflict may have come free on our side: the feed must be read again even if
    # the channel's has not changed, so no conditional GET then.
    validators = (
        (None, None)
        if calendar["has_conflicts"]
        else (
            calendar["etag"],
            calendar["last_modified"],
        )
    )
    try:
        async with asyncio.timeout(FETCH_DEADLINE_SECONDS):
            fetched = await fetcher.fetch(url, *validators)
        parsed = None
        if fetched.body is not None:
            parsed = parse(fetched.body, ZoneInfo(calendar["timezone"]), calendar["today"])
    except (FeedError, TimeoutError) as exc:
        reason = str(exc) if isinstance(exc, FeedError) else "the feed timed out"
        async with pool.acquire() as conn:
            await conn.execute(QUERIES["record_sync_failure"], calendar_id, reason)
        log.warning("channel_sync_failed", extra={"calendar_id": calendar_id, "reason": reason})
        return {"outcome": "feed_error", "error": reason}
    applied: dict[str, Any] = {}
    async with pool.acquire() as conn:
        if parsed is not None:
            shown = set(calendar["exported_unavailable"])
            events = parsed.events
            row = await conn.fetchrow(
                QUERIES["apply_calendar_feed"],
                calendar_id,
                [e.uid for e in events],
                [e.checkin for e in events],
                [e.checkout for e in events],
                [is_echo(e, shown) for e in events],
                correlation_id.get(),
            )
            applied = {k: v for k, v in dict(row).items() if k != "outbox_ids" and v}
            outbox.written(row["outbox_ids"])
            if row["conflicts"]:
                # Its own event, apart from channel_synced, so a metric and an alert can
                # count conflicts without reading the changes' shape.
                log.warning(
                    "channel_conflict_recorded",
                    extra={"calendar_id": calendar_id, "conflicts": row["conflicts"]},
                )
        await conn.execute(
            QUERIES["record_sync_success"],
            calendar_id,
            fetched.etag,
            fetched.last_modified,
            len(parsed.events) if parsed else None,
            parsed.ignored if parsed else None,
        )
    outcome = "not_modified" if parsed is None else "applied" if applied else "unchanged"
    log.info(
        "channel_synced", extra={"calendar_id": calendar_id, "outcome": outcome, "changes": applied}
    )
    return {"outcome": outcome, **applied}
