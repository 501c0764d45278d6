"""The internet-facing route table: health, provider webhooks, channel feeds, and the inn's
console and API (which only read, and record the changes the worker makes).

Nothing here may run a critical transaction; internal routes never appear here
(a test checks this table and the live server).
"""

from starlette.routing import Route

from app.api.routes import ROUTES as API
from app.console.pages import ROUTES as CONSOLE
from app.http.health import health, ready
from app.http.ical import ical_feed
from app.http.webhooks import (
    stripe_webhook,
    whatsapp_evolution,
    whatsapp_meta,
    whatsapp_meta_handshake,
)

routes = [
    Route("/health", health, methods=["GET"]),
    Route("/ready", ready, methods=["GET"]),
    Route("/webhooks/stripe", stripe_webhook, methods=["POST"]),
    Route("/webhooks/whatsapp/meta", whatsapp_meta_handshake, methods=["GET"]),
    Route("/webhooks/whatsapp/meta", whatsapp_meta, methods=["POST"]),
    Route("/webhooks/whatsapp/evolution", whatsapp_evolution, methods=["POST"]),
    Route("/ical/{token}.ics", ical_feed, methods=["GET"]),
    *CONSOLE,
    *API,
]
