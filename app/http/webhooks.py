"""Provider webhooks (public role): verify, record the receipt, enqueue, then answer."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from app.http.body import read_capped, require_json
from app.http.deps import deps
from app.payments.stripe_events import HANDLED_TYPES, verify_event, worker_details
from app.tasks.queue import task_name
from app.tasks.receipts import Incoming, accept

# Stripe events are a few KiB; anything this large is not one.
STRIPE_MAX_BODY = 256 * 1024


async def stripe_webhook(request: Request) -> JSONResponse:
    """POST /webhooks/stripe: 200 only once the receipt is committed and its task exists."""
    d = deps(request)
    require_json(request)
    body = await read_capped(request, STRIPE_MAX_BODY)
    assert d.settings.stripe_webhook_secret is not None
    event = verify_event(
        body, request.headers.get("stripe-signature"), d.settings.stripe_webhook_secret.reveal()
    )
    outcome = await accept(
        d.pool,
        d.queue,
        d.marks,
        Incoming(
            source="stripe",
            external_id=event["id"],
            event_type=event["type"],
            details=worker_details(event),
            task_name=task_name("stripe", event["id"]),
            queue="webhooks",
            path="/tasks/stripe/event",
            ignored=event["type"] not in HANDLED_TYPES,
        ),
    )
    return JSONResponse({"received": True, "outcome": outcome})
