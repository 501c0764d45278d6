"""The console's changes, as back-office commands the worker runs.

The public role only records a command (``record``: once per form token, so a form sent
twice is one command) and enqueues its task; the worker (``run``) executes it with the
back office's function, under the staff member's scope, with the form token as the
command's idempotency key, and keeps its result for the page that polls it. A refusal (an
overbooking block, a preview that changed) is a result too, never a retry.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from app.backoffice.blocks import block_units, unblock_units
from app.backoffice.cancel import cancel_reservation
from app.backoffice.rates import change_rates
from app.backoffice.runner import Scope, write_audit
from app.conversations import store
from app.db import QUERIES
from app.errors import AppError, BadRequest, NotFound
from app.inventory.properties import Property
from app.inventory.setup import AriChange
from app.tasks import catalog
from app.tasks.queue import TaskQueue

log = logging.getLogger("app.console")

Runner = Callable[[asyncpg.Pool, Scope, dict[str, Any], str], Awaitable[dict[str, Any]]]


def _day(value: object, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise BadRequest(f"{name} must be a date (YYYY-MM-DD)") from None


def _count(value: object, name: str, lo: int, hi: int) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise BadRequest(f"{name} must be a whole number") from None
    if not lo <= number <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}")
    return number


def arguments(command: str, form: dict[str, str]) -> dict[str, Any]:
    """A command's arguments from its form, checked before anything is recorded."""
    if command in ("block.add", "block.remove", "ari.change"):
        checkin, checkout = (
            _day(form.get("checkin"), "checkin"),
            _day(form.get("checkout"), "checkout"),
        )
        if not 0 < (checkout - checkin).days <= 366:
            raise BadRequest("the range must end after it starts, within a year")
        args: dict[str, Any] = {
            "room_type": str(form.get("room_type", ""))[:64],
            "checkin": checkin.isoformat(),
            "checkout": checkout.isoformat(),
        }
        if command != "ari.change":
            return {**args, "units": _count(form.get("units", "1"), "units", 1, 100)}
        if form.get("rate_cents"):  # the API's
            args["rate_cents"] = _count(form["rate_cents"], "rate_cents", 1, 10**9 - 1)
        elif form.get("rate"):  # the console's, in reais
            args["rate_cents"] = round(float(form["rate"].replace(",", ".")) * 100)
            if not 0 < args["rate_cents"] < 10**9:
                raise BadRequest("the rate must be a positive amount")
        if form.get("min_stay"):
            args["min_stay"] = _count(form["min_stay"], "min_stay", 0, 30)
        if len(args) == 3:
            raise BadRequest("nothing to change")
        return args
    if command == "reservation.cancel":
        return {"code": str(form.get("code", ""))[:32]}
    if command == "conversation.bot":
        try:
            return {"conversation_id": str(uuid.UUID(str(form.get("conversation_id"))))}
        except ValueError:
            raise BadRequest("no such conversation") from None
    raise BadRequest(f"unknown command {command!r}")


async def record(
    pool: asyncpg.Pool,
    queue: TaskQueue,
    prop: Property,
    contact_hash: str,
    form_token: str,
    command: str,
    args: dict[str, Any],
) -> uuid.UUID:
    """Record the command (once per form token) and enqueue its task; its id. Raises
    Unavailable when the task cannot be enqueued (the form can be sent again)."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            QUERIES["console_record_command"], prop.id, contact_hash, form_token, command, args
        )
    if not row["ours"]:
        raise NotFound("no such command")
    kind = catalog.CONSOLE_COMMAND
    await queue.enqueue(kind, kind.task_name(str(row["id"])), {"command_id": str(row["id"])})
    return uuid.UUID(str(row["id"]))


async def _block(pool: asyncpg.Pool, scope: Scope, a: dict[str, Any], key: str) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return await block_units(
            conn, scope, a["room_type"], _day(a["checkin"], "checkin"),
            _day(a["checkout"], "checkout"), a["units"], execute=True, key=key,
        )  # fmt: skip


async def _unblock(pool: asyncpg.Pool, scope: Scope, a: dict[str, Any], key: str) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return await unblock_units(
            conn, scope, a["room_type"], _day(a["checkin"], "checkin"),
            _day(a["checkout"], "checkout"), a["units"], execute=True, key=key,
        )  # fmt: skip


async def _rates(pool: asyncpg.Pool, scope: Scope, a: dict[str, Any], key: str) -> dict[str, Any]:
    change = AriChange(rate_cents=a.get("rate_cents"), min_stay=a.get("min_stay"))
    async with pool.acquire() as conn:
        return await change_rates(
            conn, scope, a["room_type"], _day(a["checkin"], "checkin"),
            _day(a["checkout"], "checkout"), change, execute=True, key=key,
        )  # fmt: skip


async def _cancel(pool: asyncpg.Pool, scope: Scope, a: dict[str, Any], key: str) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return await cancel_reservation(conn, scope, a["code"], execute=True, key=key)


async def _to_bot(pool: asyncpg.Pool, scope: Scope, a: dict[str, Any], key: str) -> dict[str, Any]:
    """Hand a conversation the staff had back to the bot (the staff's "#bot")."""
    conversation_id = uuid.UUID(a["conversation_id"])
    async with pool.acquire() as conn:
        owner = await conn.fetchval(QUERIES["console_conversation_property"], conversation_id)
    if owner != scope.property.id:
        raise NotFound("no such conversation")
    # The guest's own task may be running: take its lease, as any turn does.
    async with store.leased(pool, conversation_id), pool.acquire() as conn:
        released = await conn.fetchval(QUERIES["console_release_to_bot"], conversation_id)
        result = {"outcome": "released" if released else "not_handed_off"}
        await write_audit(conn, scope.property.id, scope.actor, "conversation.bot", a, result)
    return result


RUNNERS: dict[str, Runner] = {
    "block.add": _block,
    "block.remove": _unblock,
    "ari.change": _rates,
    "reservation.cancel": _cancel,
    "conversation.bot": _to_bot,
}


async def run(pool: asyncpg.Pool, command_id: uuid.UUID) -> str:
    """Execute a recorded command once; its status (``done``, ``refused``, or what it was)."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(QUERIES["console_command"], command_id)
        if row is None:
            return "unknown_command"
        if row["status"] != "queued":
            return str(row["status"])
        prop = await conn.fetchrow(QUERIES["property_of_id"], row["property_id"])
    scope = Scope(Property(**dict(prop)), row["contact_hash"])
    try:
        result = await RUNNERS[row["command"]](
            pool, scope, row["arguments"], f"console:{command_id}"
        )
        status = "done"
    except AppError as exc:
        if exc.status >= 500:
            raise  # retried by Cloud Tasks
        result, status = {"error": exc.code, "message": str(exc)}, "refused"
    async with pool.acquire() as conn:
        await conn.execute(QUERIES["console_finish_command"], command_id, status, result)
    log.info("console_command", extra={"command": row["command"], "status": status})
    return status
