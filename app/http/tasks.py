"""Cloud Tasks targets (worker role). Every handler sits behind ``task_endpoint`` (OIDC).

Answers 2xx when the work is done or can never apply (so Cloud Tasks stops), and
5xx only when a retry may succeed.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse

from app.channels.fetch import Fetcher
from app.channels.sync import sync_calendar
from app.console import commands as console_commands
from app.console import login_code
from app.conversations.handlers import handle_message, notify_guest
from app.conversations.model import Services
from app.conversations.staff_notices import notify_staff
from app.db import QUERIES
from app.http.body import read_capped
from app.http.deps import Deps, deps
from app.inventory.holds import expire_due_holds, expire_hold
from app.logging import annotate_request, correlation_id
from app.messaging.delivery import deliver
from app.ops.retention import retention
from app.ops.status import check_status, log_status
from app.ops.tasks_backlog import read_backlog
from app.payments.events import process_stripe_event
from app.payments.refunds import send_refund
from app.tasks import catalog
from app.tasks.oidc import Endpoint, task_endpoint
from app.tasks.outbox import relay_due
from app.tasks.receipts import redrive_stale

log = logging.getLogger("app.tasks")

TASK_MAX_BODY = 64 * 1024
# One sweep task expires at most SWEEP_BATCH * SWEEP_MAX_BATCHES holds (about a second of
# work) and, when its last batch was full, enqueues its own continuation: a backlog of any
# size drains in one chain of tasks instead of 2,000 holds per scheduled run.
SWEEP_BATCH = 500
SWEEP_MAX_BATCHES = 4
# Receipts one re-drive run looks at: enough for an outage's backlog, bounded in time.
REDRIVE_LIMIT = 200
# Each calendar is synced once per slot of the schedule (a second run in the slot, or a
# redelivery, finds its task already there).
SYNC_SLOT_SECONDS = 15 * 60


async def _body(request: Request) -> dict[str, Any] | None:
    try:
        body = orjson.loads(await read_capped(request, TASK_MAX_BODY))
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def _done(outcome: str, **fields: Any) -> JSONResponse:
    annotate_request(outcome=outcome)
    return JSONResponse({"outcome": outcome, **fields})


@task_endpoint
async def stripe_event(request: Request) -> JSONResponse:
    d = deps(request)
    body = await _body(request)
    event_id = body.get("event_id") if body else None
    if not isinstance(event_id, str):
        return _done("malformed_task")  # our own bug: retrying cannot fix it
    assert d.stripe is not None
    return _done(await process_stripe_event(d.pool, d.stripe.client, d.settings, event_id))


@task_endpoint
async def hold_expire(request: Request) -> JSONResponse:
    d = deps(request)
    body = await _body(request)
    try:
        hold_id = uuid.UUID(str(body.get("hold_id") if body else None))
    except ValueError:
        return _done("malformed_task")
    annotate_request(hold_id=str(hold_id))
    async with d.pool.acquire() as conn:
        expired = await expire_hold(conn, hold_id)
    return _done("expired" if expired else "noop")


@task_endpoint
async def holds_sweep(request: Request) -> JSONResponse:
    d = deps(request)
    total, full = 0, False
    async with d.pool.acquire() as conn:
        for _ in range(SWEEP_MAX_BATCHES):
            expired = await expire_due_holds(conn, SWEEP_BATCH)
            total += len(expired)
            full = len(expired) == SWEEP_BATCH
            if not full:
                break
    if full:
        # Named after this task, so a redelivery of it enqueues the same continuation once.
        parent = request.headers.get("x-cloudtasks-taskname") or correlation_id.get() or ""
        kind = catalog.HOLDS_SWEEP
        await d.queue.enqueue(kind, kind.task_name(f"{parent}:next"), {})
    return _done("swept", expired=total, continued=full)


@task_endpoint
async def outbox_relay(request: Request) -> JSONResponse:
    d = deps(request)
    return _done("relayed", settled=await relay_due(d.pool, d.queue))


@task_endpoint
async def receipts_redrive(request: Request) -> JSONResponse:
    d = deps(request)
    found = await redrive_stale(d.pool, d.queue, d.settings.receipt_redrive_seconds, REDRIVE_LIMIT)
    return _done("redriven", **found)


def _services(d: Deps) -> Services:
    assert d.stripe is not None
    return Services(d.pool, d.queue, d.stripe.client, d.settings, d.model, d.graph)


@task_endpoint
async def whatsapp_message(request: Request) -> JSONResponse:
    d = deps(request)
    body = await _body(request)
    event_id = body.get("event_id") if body else None
    if not isinstance(event_id, str):
        return _done("malformed_task")
    return _done(await handle_message(_services(d), d.pii, event_id))


@task_endpoint
async def whatsapp_send(request: Request) -> JSONResponse:
    d = deps(request)
    body = await _body(request)
    try:
        message_id = uuid.UUID(str(body.get("message_id") if body else None))
    except ValueError:
        return _done("malformed_task")
    annotate_request(message_id=str(message_id))
    assert d.graph is not None and d.settings.whatsapp_access_token is not None
    token = d.settings.whatsapp_access_token.reveal()
    proof = d.settings.whatsapp_send_proof_seconds
    return _done(await deliver(d.pool, d.pii, d.graph, token, message_id, proof))


async def _outbox_id(request: Request) -> int | None:
    body = await _body(request)
    outbox_id = body.get("outbox_id") if body else None
    if not isinstance(outbox_id, int) or isinstance(outbox_id, bool):
        return None
    annotate_request(outbox_id=outbox_id)
    return outbox_id


@task_endpoint
async def conversation_notify(request: Request) -> JSONResponse:
    d = deps(request)
    outbox_id = await _outbox_id(request)
    if outbox_id is None:
        return _done("malformed_task")
    return _done(await notify_guest(_services(d), d.pii, outbox_id))


@task_endpoint
async def staff_notify(request: Request) -> JSONResponse:
    d = deps(request)
    outbox_id = await _outbox_id(request)
    if outbox_id is None:
        return _done("malformed_task")
    return _done(await notify_staff(_services(d), d.pii, outbox_id))


@task_endpoint
async def refund_send(request: Request) -> JSONResponse:
    d = deps(request)
    body = await _body(request)
    try:
        refund_id = uuid.UUID(str(body.get("refund_id") if body else None))
    except ValueError:
        return _done("malformed_task")
    annotate_request(refund_id=str(refund_id))
    assert d.stripe is not None
    return _done(await send_refund(d.pool, d.stripe.client, refund_id))


@task_endpoint
async def channel_sync(request: Request) -> JSONResponse:
    d = deps(request)
    body = await _body(request)
    calendar_id = body.get("calendar_id") if body else None
    if not isinstance(calendar_id, int) or isinstance(calendar_id, bool):
        return _done("malformed_task")
    annotate_request(calendar_id=calendar_id)
    fetcher = Fetcher(allow_local=d.settings.env == "dev")
    result = await sync_calendar(d.pool, d.pii, fetcher, calendar_id)
    return _done(result.pop("outcome"), **result)


@task_endpoint
async def channels_sync_all(request: Request) -> JSONResponse:
    d = deps(request)
    slot = int(time.time()) // SYNC_SLOT_SECONDS
    async with d.pool.acquire() as conn:
        calendars = [row["id"] for row in await conn.fetch(QUERIES["calendars_to_sync"], None)]
    kind = catalog.CHANNEL_SYNC
    for calendar_id in calendars:
        name = kind.task_name(f"{calendar_id}-{slot}")
        await d.queue.enqueue(kind, name, {"calendar_id": calendar_id})
    return _done("enqueued", calendars=len(calendars))


@task_endpoint
async def ops_status(request: Request) -> JSONResponse:
    """A breached check is the alerts' business, not a failed task: 200 either way, so
    Cloud Tasks never retries a status that was read and logged. The queues are read first,
    so no pooled connection waits on Cloud Tasks."""
    d = deps(request)
    config = d.queue.config
    backlog = await read_backlog(config.project, config.location, config.emulator_host)
    async with d.pool.acquire() as conn:
        results = await check_status(conn, backlog)
    log_status(results)
    return _done("checked", breached=[r.check.name for r in results if r.breached])


@task_endpoint
async def ops_retention(request: Request) -> JSONResponse:
    """The day's retention, applied: a redelivery finds less or nothing left to do."""
    d = deps(request)
    async with d.pool.acquire() as conn:
        result = await retention(conn, apply=True)
    return _done("retained", rows=result["rows"], more=result["more"])


# The handler of each task kind: the worker's route table is made from this.
@task_endpoint
async def console_login_code(request: Request) -> JSONResponse:
    d = deps(request)
    body = await _body(request)
    if not body or not all(
        k in body for k in ("request_id", "sealed", "property_id", "contact_hash")
    ):
        return _done("malformed_task")
    assert d.graph is not None and d.settings.whatsapp_access_token is not None
    token = d.settings.whatsapp_access_token.reveal()
    proof = d.settings.whatsapp_send_proof_seconds
    return _done(await login_code.send_code(d.pool, d.pii, d.graph, token, proof, body))


@task_endpoint
async def console_command(request: Request) -> JSONResponse:
    d = deps(request)
    body = await _body(request)
    try:
        command_id = uuid.UUID(str(body.get("command_id") if body else None))
    except ValueError:
        return _done("malformed_task")
    annotate_request(command_id=str(command_id))
    return _done(await console_commands.run(d.pool, command_id))


HANDLERS: dict[catalog.TaskKind, Endpoint] = {
    catalog.STRIPE_EVENT: stripe_event,
    catalog.WHATSAPP_MESSAGE: whatsapp_message,
    catalog.HOLD_EXPIRE: hold_expire,
    catalog.HOLDS_SWEEP: holds_sweep,
    catalog.OUTBOX_RELAY: outbox_relay,
    catalog.RECEIPTS_REDRIVE: receipts_redrive,
    catalog.CHANNEL_SYNC: channel_sync,
    catalog.CHANNELS_SYNC_ALL: channels_sync_all,
    catalog.WHATSAPP_SEND: whatsapp_send,
    catalog.CONVERSATION_NOTIFY: conversation_notify,
    catalog.STAFF_NOTIFY: staff_notify,
    catalog.REFUND_SEND: refund_send,
    catalog.OPS_STATUS: ops_status,
    catalog.RETENTION: ops_retention,
    catalog.CONSOLE_LOGIN_CODE: console_login_code,
    catalog.CONSOLE_COMMAND: console_command,
}
