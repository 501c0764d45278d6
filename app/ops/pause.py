"""Pausing a provider's webhooks during an incident (runbook §7.1, §7.4, SEV0 containment).

``ops pause stripe|whatsapp`` writes a ``provider_pauses`` row; while it exists the public
role answers that provider's webhooks 503 with Retry-After and writes nothing, so the
provider keeps the events and delivers them again after ``ops resume`` deletes the row:
nothing is lost, only delayed. No deploy: every public instance reads the table through
``PauseCache``. Both commands preview unless applied, and an applied one writes its
``audit_log`` row (no property: a pause concerns every inn) in the same transaction.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg

from app import db
from app.backoffice.runner import write_audit
from app.db import QUERIES

log = logging.getLogger("app.ops.pause")

Provider = Literal["stripe", "whatsapp"]
PROVIDERS: tuple[Provider, ...] = ("stripe", "whatsapp")
# What a pause answers 503, per provider (Meta's subscription handshake, a GET, keeps
# working: it writes nothing and Meta would unsubscribe a URL that fails it).
WEBHOOKS: dict[str, tuple[str, ...]] = {
    "stripe": ("POST /webhooks/stripe",),
    "whatsapp": ("POST /webhooks/whatsapp/meta", "POST /webhooks/whatsapp/evolution"),
}
# A pause must reach every public instance within 5 s of the command. Re-reading every 2 s
# keeps 3 s of margin for the read itself and costs each instance one primary-key scan of
# a two-row table every 2 s, nothing next to the webhooks' own queries.
CACHE_SECONDS = 2.0


def operator(actor: str | None = None) -> str:
    """Who runs the command: ``--actor``, else ``cli:<login name>``."""
    if actor:
        return actor
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "cli"


def _shown(row: asyncpg.Record | None) -> dict[str, Any] | None:
    return None if row is None else {k: row[k] for k in ("paused_at", "paused_by", "reason")}


async def pause_provider(
    conn: asyncpg.Connection,
    provider: Provider,
    actor: str,
    reason: str | None = None,
    *,
    execute: bool = False,
) -> dict[str, Any]:
    """Preview, or pause ``provider``'s webhooks; a provider already paused keeps its pause
    (``already_paused``)."""
    shown = {"command": "provider.pause", "provider": provider, "webhooks": WEBHOOKS[provider]}
    if not execute:
        current = await conn.fetchrow(QUERIES["provider_pause"], provider)
        return {"outcome": "preview", **shown, "paused": _shown(current)}
    async with conn.transaction():
        made = await conn.fetchrow(QUERIES["pause_provider"], provider, actor, reason)
        row = made or await conn.fetchrow(QUERIES["provider_pause"], provider)
        outcome = "paused" if made else "already_paused"
        result = {"outcome": outcome, **shown, "paused": _shown(row)}
        arguments = {"provider": provider, "reason": reason}
        await write_audit(conn, None, actor, "provider.pause", arguments, result)
    log.warning("provider_paused", extra={"provider": provider, "outcome": outcome})
    return result


async def resume_provider(
    conn: asyncpg.Connection, provider: Provider, actor: str, *, execute: bool = False
) -> dict[str, Any]:
    """Preview, or resume ``provider``'s webhooks (``not_paused`` when it was not)."""
    shown = {"command": "provider.resume", "provider": provider, "webhooks": WEBHOOKS[provider]}
    if not execute:
        current = await conn.fetchrow(QUERIES["provider_pause"], provider)
        return {"outcome": "preview", **shown, "paused": _shown(current)}
    async with conn.transaction():
        ended = await conn.fetchrow(QUERIES["resume_provider"], provider)
        result = {"outcome": "resumed" if ended else "not_paused", **shown, "was": _shown(ended)}
        await write_audit(conn, None, actor, "provider.resume", {"provider": provider}, result)
    log.warning("provider_resumed", extra={"provider": provider, "outcome": result["outcome"]})
    return result


@dataclass
class PauseCache:
    """The paused providers as the public role sees them: read at most once per
    ``seconds`` per process, however many webhooks arrive (one read at a time; the others
    wait for it)."""

    seconds: float = CACHE_SECONDS
    _paused: frozenset[str] = frozenset()
    _fresh_until: float = float("-inf")
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def paused(self, pool: asyncpg.Pool) -> frozenset[str]:
        if time.monotonic() >= self._fresh_until:
            async with self._lock:
                if time.monotonic() >= self._fresh_until:
                    self._paused = await self._read(pool)
                    self._fresh_until = time.monotonic() + self.seconds
        return self._paused

    async def _read(self, pool: asyncpg.Pool) -> frozenset[str]:
        # Fail open: a failed read keeps the last state read (no pause, if none was), for
        # one period. Failing closed would answer every provider 503 over a query that
        # failed, while the webhook itself needs the database to record its receipt
        # anyway: if the database is down, that answers 503 and the provider retries; if
        # it is up, the event is taken as it would be without this feature. Either way
        # nothing is lost, and a pause read before the failure still holds.
        try:
            async with pool.acquire() as conn:
                rows = await conn.fetch(QUERIES["paused_providers"])
        except (asyncpg.PostgresError, *db.UNREACHABLE) as exc:
            log.warning("pause_state_unreadable", extra={"error": type(exc).__name__})
            return self._paused
        return frozenset(row["provider"] for row in rows)
