"""The two processes ``bench.ingress`` measures against, each started on its own.

``python -m bench.ingress_services app``: the public role as ``python -m app serve``
runs it (settings from the environment, JSON logging at LOG_LEVEL on stdout, hypercorn on
uvloop, one process, no hypercorn access log), with two endpoints in front of the app:

* ``POST /bench/floor/<event id>``: reads the body without looking at it, runs the same
  ``insert_receipt`` query as the webhook, then the same ``TaskQueue.enqueue`` (queue
  ``webhooks``, name ``STRIPE_EVENT.task_name(id)``, path ``/tasks/stripe/event``, same
  body) on the app's own pool and queue, and answers a fixed JSON body;
* ``GET /bench/trivial``: a fixed JSON body.

Both are plain ASGI callables dispatched before the app, so they skip its middleware (no
correlation id, no access line) and Starlette's routing: they are floors, what any webhook
and any answer must cost on this server. Everything else, the webhook included, is the
unmodified ``create_app(settings)``.

``python -m bench.ingress_services tasks --port P --certs-port Q``: the local Cloud Tasks
emulator (``app.dev.tasks_emulator.TasksEmulator``) on 127.0.0.1 with ``max_attempts=0``:
CreateTask does all it does in ``make run`` (validation, name dedupe, storing the task),
but no task is ever delivered. A first delivery attempt costs the emulator about 1 ms of
CPU even to a port where nothing listens (it mints an RS256 OIDC token, then connects),
which at webhook rates would take most of a core on a 2-core machine; a long backoff
only spares the retries, not that first attempt.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import Any

import orjson
import uvloop
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
from starlette.types import ASGIApp, Receive, Scope, Send

from app.db import QUERIES
from app.dev.servers import run_until_signalled
from app.dev.tasks_emulator import TasksEmulator
from app.http.app import create_app
from app.http.deps import Deps
from app.logging import configure_logging
from app.serve import GRACEFUL_TIMEOUT_SECONDS
from app.settings import Settings, load_settings
from app.tasks.catalog import STRIPE_EVENT

FLOOR_PREFIX = "/bench/floor/"
TRIVIAL_PATH = "/bench/trivial"
EVENT_TYPE = "checkout.session.completed"
# What worker_details keeps of the bench's events, as a constant: the floor parses nothing.
FLOOR_DETAILS: dict[str, Any] = {
    "object_id": "cs_test_bench",
    "payment_status": "paid",
    "hold_id": "00000000-0000-4000-8000-000000000000",
    "amount_total": 35_000,
    "currency": "brl",
}
_JSON_HEADERS = [(b"content-type", b"application/json")]
_ENQUEUED = orjson.dumps({"received": True, "outcome": "enqueued"})
_DUPLICATE = orjson.dumps({"error": "duplicate"})
_TRIVIAL = orjson.dumps({"status": "ok"})


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _JSON_HEADERS})
    await send({"type": "http.response.body", "body": body})


async def _floor(scope: Scope, receive: Receive, send: Send) -> None:
    """The receipt INSERT and the enqueue, with nothing around them."""
    event_id = scope["path"][len(FLOOR_PREFIX) :]
    more = True
    while more:  # the same bytes arrive as for the webhook; read them, never parse them
        more = (await receive()).get("more_body", False)
    d: Deps = scope["state"]["deps"]
    name = STRIPE_EVENT.task_name(event_id)
    async with d.pool.acquire() as conn:
        row = await conn.fetchrow(
            QUERIES["insert_receipt"],
            "stripe",
            event_id,
            EVENT_TYPE,
            FLOOR_DETAILS,
            name,
            False,
            event_id,
        )
    if row is None:  # not a new event: the bench must see it as a failure
        await _answer(send, 409, _DUPLICATE)
        return
    await d.queue.enqueue(STRIPE_EVENT, name, {"source": "stripe", "event_id": event_id})
    await _answer(send, 200, _ENQUEUED)


def with_bench_endpoints(app: ASGIApp) -> ASGIApp:
    """``app`` with the floor and trivial endpoints dispatched ahead of it."""

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path.startswith(FLOOR_PREFIX) and scope["method"] == "POST":
                await _floor(scope, receive, send)
                return
            if path == TRIVIAL_PATH:
                await _answer(send, 200, _TRIVIAL)
                return
        await app(scope, receive, send)

    return dispatch


async def _serve_app(settings: Settings) -> None:
    # The same server configuration as app.serve, around a different ASGI callable.
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = GRACEFUL_TIMEOUT_SECONDS
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    app = with_bench_endpoints(create_app(settings))
    await hypercorn_serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


def serve_app() -> None:
    settings = load_settings(require_role=True)
    configure_logging(settings.role, settings.log_level)
    uvloop.run(_serve_app(settings))


def serve_tasks(port: int, certs_port: int) -> None:
    # Its one per-task line (task_abandoned, a WARNING) is not what is measured.
    configure_logging("tasks-emulator", "ERROR")
    emulator = TasksEmulator(grpc_port=port, certs_port=certs_port, max_attempts=0)
    asyncio.run(run_until_signalled(emulator.start, emulator.stop))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    services = parser.add_subparsers(dest="service", required=True)
    services.add_parser("app", help="the public role with the floor and trivial endpoints")
    tasks = services.add_parser("tasks", help="the Cloud Tasks emulator, never delivering")
    tasks.add_argument("--port", type=int, required=True)
    tasks.add_argument("--certs-port", type=int, required=True)
    args = parser.parse_args(argv)
    if args.service == "app":
        serve_app()
    else:
        serve_tasks(args.port, args.certs_port)


if __name__ == "__main__":
    main()
