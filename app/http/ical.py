"""GET /ical/<token>.ics (public role): a channel fetches our feed of a calendar.

The token is the URL's secret: unknown, malformed or rotated away, it is a 404 — never a
401, which would tell that a calendar exists. ``If-None-Match`` with the feed's ETag is a
304. The nights the channel was shown closed are recorded (only when they changed), so an
import can tell a channel's echo of our feed from a booking of its own.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from app.channels.export import HORIZON_DAYS, nights
from app.channels.tokens import digest
from app.db import QUERIES
from app.errors import NotFound
from app.http.deps import deps
from app.logging import annotate_request

_TOKEN = re.compile(r"^[0-9a-f]{40}$")
# Channels poll every few minutes; let them (and any cache between) keep a feed that long.
CACHE_CONTROL = "max-age=300"


async def ical_feed(request: Request) -> Response:
    d = deps(request)
    token = request.path_params["token"]
    if not _TOKEN.match(token):
        raise NotFound()
    async with d.pool.acquire() as conn:
        calendar = await conn.fetchrow(QUERIES["export_feed"], digest(token), HORIZON_DAYS)
        if calendar is None:
            raise NotFound()
        runs = tuple(zip(calendar["first_nights"], calendar["mornings_free"], strict=True))
        shown = nights(runs)
        if shown != list(calendar["exported_unavailable"]):
            await conn.execute(QUERIES["record_export"], calendar["id"], shown)
    annotate_request(calendar_id=calendar["id"], runs=len(runs))
    feed = d.feeds.feed(calendar["id"], runs)
    headers = {"ETag": feed.etag, "Cache-Control": CACHE_CONTROL}
    if feed.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(feed.body, media_type="text/calendar; charset=utf-8", headers=headers)
