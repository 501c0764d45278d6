"""The whole payments path with real parts: public and worker apps over HTTP, the local
Cloud Tasks (real client, real OIDC tokens), the fake Stripe API and Postgres."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import stripe

from app import db
from app.dev.fake_evolution import FakeEvolution
from app.dev.fake_graph import FakeGraph, signature
from app.dev.fake_model import FakeModel
from app.dev.fake_stripe import FakeStripe
from app.dev.postgres import free_port
from app.dev.tasks_emulator import TasksEmulator
from app.inventory.property_file import PropertySpec, RoomTypeSpec
from app.inventory.setup import import_property
from app.inventory.stay import Stay
from app.payments.booking import Booking, hold_and_checkout
from app.payments.stripe_api import open_stripe
from app.pii import pii_keys
from app.settings import Secret, Settings
from app.tasks.outbox import relaying
from app.tasks.queue import TaskQueue, queue_config
from tests.inventory.conftest import START, Calendar, make_calendar
from tests.support import hold_request, serve_app

SERVICE_ACCOUNT = "tasks@hotelly-test.iam.gserviceaccount.com"
WEBHOOK_SECRET = "whsec_test_secret"
STRIPE_KEY = "sk_test_key"
APP_SECRET = "meta-app-secret-test"
VERIFY_TOKEN = "meta-verify-token-test"
GRAPH_TOKEN = "graph-token-test"
PII_KEY = base64.b64encode(b"k" * 32).decode()
CONTACT_HASH_KEY = base64.b64encode(b"h" * 32).decode()


@dataclass
class Stack:
    public: str
    worker: str
    emulator: TasksEmulator
    stripe: FakeStripe
    graph: FakeGraph
    settings: Settings  # the worker's
    pool: asyncpg.Pool
    queue: TaskQueue
    client: stripe.StripeClient

    def sign(
        self, payload: bytes, timestamp: int | None = None, secret: str = WEBHOOK_SECRET
    ) -> str:
        return stripe.WebhookSignature.generate_signature_header(
            payload.decode(), secret, timestamp=timestamp or int(time.time())
        )

    async def post_event(self, payload: bytes, **headers: str) -> httpx.Response:
        sent = {"Content-Type": "application/json", "Stripe-Signature": self.sign(payload)}
        sent.update(headers)
        async with httpx.AsyncClient(base_url=self.public) as http:
            return await http.post("/webhooks/stripe", content=payload, headers=sent)

    def report_statuses(self) -> None:
        """Make the fake Graph post, like Meta, the statuses of each message it takes to the
        public webhook (off by default, so other tests see statuses only when they post them)."""
        self.graph.webhook_url = f"{self.public}/webhooks/whatsapp/meta"
        self.graph.app_secret = APP_SECRET

    async def post_whatsapp(
        self, envelope: dict[str, Any] | bytes, **headers: str
    ) -> httpx.Response:
        """Deliver a Meta envelope to the public webhook, signed unless headers say otherwise."""
        body = envelope if isinstance(envelope, bytes) else orjson.dumps(envelope)
        sent = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": signature(body, APP_SECRET),
        }
        sent.update(headers)
        async with httpx.AsyncClient(base_url=self.public) as http:
            return await http.post("/webhooks/whatsapp/meta", content=body, headers=sent)


# Where a guest's or staff member's details could land if they leaked.
_SCANNED = (
    "processed_events",
    "outbox_events",
    "conversations",
    "contacts",
    "messages",
    "holds",
    "properties",
    "payments",
    "reservations",
    "refunds",
    "audit_log",
)
_SUBQUERIES = [f"(SELECT string_agg(t::text, ' ') FROM {table} t)" for table in _SCANNED]  # noqa: S608
_ROWS_AS_TEXT = f"SELECT concat_ws(' ', {', '.join(_SUBQUERIES)})"


async def rows_as_text(stack: Stack) -> str:
    """Every row of every table a PII scan searches, as Postgres prints it."""
    return str(await stack.pool.fetchval(_ROWS_AS_TEXT))


async def worker_task(
    stack: Stack, path: str, body: dict[str, Any], **headers: str
) -> dict[str, Any]:
    """Call a worker task endpoint as Cloud Tasks does, with a Google-signed OIDC token."""
    token = stack.emulator.mint_token(SERVICE_ACCOUNT, stack.settings.oidc_audience)
    async with httpx.AsyncClient(base_url=stack.worker) as http:
        response = await http.post(
            path,
            content=orjson.dumps(body),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                **headers,
            },
        )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def calendar(stack: Stack, units: int = 2) -> Calendar:
    """A pousada with one room type 'std' (2 guests, ``units`` rooms, R$300) for 10 nights."""
    async with stack.pool.acquire() as conn:
        return await make_calendar(conn, [("std", 2, units, 30000)], days=10)


async def book(stack: Stack, cal: Calendar, first: int = 0, nights: int = 2) -> Booking:
    """Hold one 'std' room and open its Checkout Session, as the app does on a "yes"."""
    checkin = cal.start + dt.timedelta(days=first)
    request = hold_request(
        cal.property.id,
        Stay(checkin, checkin + dt.timedelta(days=nights), 2),
        ((cal.room_type_ids["std"], 1),),
        uuid.uuid4().hex,
    )
    async with relaying(stack.pool, stack.queue):  # as the handler of a guest's "yes" is
        return await hold_and_checkout(stack.pool, stack.client, stack.settings, request)


@contextlib.asynccontextmanager
async def running_stack(db_url: str, **overrides: Any) -> AsyncIterator[Stack]:
    """Start every part; ``overrides`` change the apps' settings (e.g. auto refunds)."""
    emulator = TasksEmulator(
        grpc_port=free_port(), certs_port=free_port(), min_backoff=0.05, max_backoff=0.4
    )
    fake = FakeStripe(port=free_port(), api_key=STRIPE_KEY)
    graph = FakeGraph(port=free_port(), access_token=GRAPH_TOKEN)
    await emulator.start()
    await fake.start()
    await graph.start()
    worker_port = free_port()
    worker_url = f"http://127.0.0.1:{worker_port}"
    settings = Settings(
        database_url=Secret(db_url),
        role="worker",
        port=worker_port,
        stripe_secret_key=Secret(STRIPE_KEY),
        stripe_webhook_secret=Secret(WEBHOOK_SECRET),
        stripe_api_base=fake.base_url,
        tasks_project="hotelly-test",
        tasks_location="southamerica-east1",
        tasks_emulator_host=emulator.host,
        worker_url=worker_url,
        tasks_service_account=SERVICE_ACCOUNT,
        oidc_audience=worker_url,
        oidc_allowed_emails=frozenset({SERVICE_ACCOUNT}),
        oidc_certs_url=emulator.certs_url,
        whatsapp_verify_token=Secret(VERIFY_TOKEN),
        whatsapp_app_secret=Secret(APP_SECRET),
        whatsapp_access_token=Secret(GRAPH_TOKEN),
        whatsapp_api_base=graph.base_url,
        pii_key=Secret(PII_KEY),
        contact_hash_key=Secret(CONTACT_HASH_KEY),
    )
    settings = dataclasses.replace(settings, **overrides)
    public_settings = dataclasses.replace(settings, role="public", port=0)
    pool = await db.create_pool(db_url, 5)
    queue = TaskQueue(queue_config(settings))
    stripe_api = open_stripe(settings)
    try:
        async with serve_app(settings) as worker, serve_app(public_settings) as public:
            yield Stack(
                public, worker, emulator, fake, graph, settings, pool, queue, stripe_api.client
            )
    finally:
        await stripe_api.close()
        await queue.close()
        await pool.close()
        await graph.stop()
        await fake.stop()
        await emulator.stop()


@pytest.fixture
async def stack(db_url: str) -> AsyncIterator[Stack]:
    async with running_stack(db_url) as running:
        yield running


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog at DEBUG for every logger, including those with their own level, and
    attached to any logger that does not propagate to the root."""
    caplog.set_level(logging.DEBUG)
    attached = []
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger):
            continue
        if logger.level != logging.NOTSET:
            caplog.set_level(logging.DEBUG, logger=name)
        if not logger.propagate:
            logger.addHandler(caplog.handler)
            attached.append(logger)
    try:
        yield caplog
    finally:
        for logger in attached:
            logger.removeHandler(caplog.handler)


# ---- an inn on an Evolution API gateway ---------------------------------------------

INSTANCE = "pousada-teste"
SECRET = "evolution-webhook-secret"
API_KEY = "evolution-instance-key"


def evolution_spec(api_base: str) -> PropertySpec:
    return PropertySpec(
        code="evo-inn",
        name="Pousada Evo",
        timezone="America/Sao_Paulo",
        currency="BRL",
        whatsapp={
            "provider": "evolution",
            "instance": INSTANCE,
            "api_base": api_base,
            "webhook_secret": SECRET,
            "api_key": API_KEY,
        },
        room_types=(RoomTypeSpec("std", "Std", 2, 1, 30000),),
        overrides=(),
        start=START,
        end=START + dt.timedelta(days=9),
    )


@pytest.fixture
async def model() -> AsyncIterator[FakeModel]:
    """A fake Gemini on Vertex AI (tests/e2e/test_whatsapp_model.py's model_settings)."""
    fake = FakeModel(free_port())
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@contextlib.asynccontextmanager
async def evolution_gateway(stack: Stack) -> AsyncIterator[FakeEvolution]:
    """A fake Evolution gateway, and the inn 'evo-inn' on it in ``stack``."""
    fake = FakeEvolution(free_port(), INSTANCE, API_KEY)
    await fake.start()
    spec = evolution_spec(fake.base_url)
    async with stack.pool.acquire() as conn:
        await import_property(conn, spec, pii=pii_keys(stack.settings))
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def gateway(stack: Stack) -> AsyncIterator[FakeEvolution]:
    async with evolution_gateway(stack) as fake:
        yield fake
