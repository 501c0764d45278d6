"""Preview, then apply exactly the preview, in one transaction, with its audit row."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import orjson

from app.db import QUERIES
from app.errors import AppError, NotFound, PreviewChanged
from app.inventory.properties import Property, get_property
from app.logging import correlation_id

CLI_ACTOR = "cli"


@dataclass(frozen=True)
class Scope:
    """The one property a command acts on, and who acts (``cli`` or a staff contact hash)."""

    property: Property
    actor: str = CLI_ACTOR


async def scope_of(conn: asyncpg.Connection, property_code: str, actor: str = CLI_ACTOR) -> Scope:
    return Scope(await get_property(conn, property_code), actor)


async def room_type_id(conn: asyncpg.Connection, scope: Scope, code: str) -> int:
    row = await conn.fetchrow(QUERIES["room_type_of_property"], scope.property.id, code)
    if row is None:
        raise NotFound(f"no room type {code!r} in {scope.property.code!r}")
    return int(row["id"])


def _json(value: Any) -> Any:
    """Plain JSON (dates as ISO text), as the preview is shown and hashed."""
    return orjson.loads(orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS))


def preview_id(command: str, effect: dict[str, Any]) -> str:
    canonical = orjson.dumps([command, effect], default=str, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:16]


def shown(command: str, effect: dict[str, Any]) -> dict[str, Any]:
    return {"command": command, "preview_id": preview_id(command, effect), **_json(effect)}


async def audit(
    conn: asyncpg.Connection,
    scope: Scope,
    command: str,
    arguments: dict[str, Any],
    result: dict[str, Any],
) -> None:
    await write_audit(conn, scope.property.id, scope.actor, command, arguments, result)


async def write_audit(
    conn: asyncpg.Connection,
    property_id: int | None,
    actor: str,
    command: str,
    arguments: dict[str, Any],
    result: dict[str, Any],
) -> None:
    """One audit_log row; no property for a command that concerns every inn (a pause)."""
    await conn.execute(
        QUERIES["audit_insert"],
        property_id,
        actor,
        command,
        _json(arguments),
        _json(result),
        correlation_id.get(),
    )


# What a command computes: its effect (the preview), from rows it locked when in the
# transaction that applies it.
Plan = Callable[[asyncpg.Connection], Awaitable[dict[str, Any]]]
# Applies a planned effect; returns the command's result.
Apply = Callable[[asyncpg.Connection, dict[str, Any]], Awaitable[dict[str, Any]]]


async def run(
    conn: asyncpg.Connection,
    scope: Scope,
    command: str,
    arguments: dict[str, Any],
    plan: Plan,
    apply: Apply,
    *,
    execute: bool,
    expected: str | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """The preview (``execute`` false: nothing written), or the command applied.

    Applied, the effect is planned again under the transaction's locks; with ``expected``
    (a preview id) it must be that preview, else PreviewChanged carries the fresh one.
    With ``key``, a command already applied under it answers its first result again.
    A refusal is audited too, in its own statement once the transaction has rolled back.
    """
    if not execute:
        return {"outcome": "preview", **shown(command, await plan(conn))}
    scope_key = f"backoffice:{scope.property.id}"
    try:
        async with conn.transaction():
            if key is not None:
                claimed = await conn.fetchval(QUERIES["claim_command_key"], scope_key, key, command)
                if claimed is None:  # applied before (a concurrent one waited for it)
                    first: dict[str, Any] = await conn.fetchval(
                        QUERIES["command_key_result"], scope_key, key
                    )
                    return first
            effect = await plan(conn)
            if expected is not None and preview_id(command, effect) != expected:
                raise PreviewChanged({"preview": shown(command, effect)})
            result = _json(await apply(conn, effect))
            await audit(conn, scope, command, arguments, result)
            if key is not None:
                await conn.execute(QUERIES["record_command_key"], scope_key, key, result)
    except AppError as exc:
        await audit(conn, scope, command, arguments, {"error": exc.code, **_json(exc.fields)})
        raise
    return result


def local_today(scope: Scope, now: dt.datetime | None) -> dt.date:
    """The property's date at ``now`` (the clock when None)."""
    if now is None:
        return scope.property.today()
    return now.astimezone(ZoneInfo(scope.property.timezone)).date()
