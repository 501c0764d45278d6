"""Liveness and readiness, mounted by both roles."""

from __future__ import annotations

import asyncio

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse

from app.db import QUERIES
from app.http.deps import deps
from app.logging import annotate_request

# Below Cloud Run's default 1 s probe timeout, so we answer before the probe gives up.
READY_TIMEOUT_SECONDS = 0.8


async def health(request: Request) -> JSONResponse:
    """Liveness: the process serves requests. No I/O."""
    return JSONResponse({"status": "ok"})


def _task_queue(request: Request) -> str:
    """What the last call to Cloud Tasks showed (never a call of its own: /ready must stay
    fast, and a queue outage is no reason to take this instance out of service)."""
    ok = deps(request).queue.reachability.ok
    return "unknown" if ok is None else "reachable" if ok else "unreachable"


async def ready(request: Request) -> JSONResponse:
    """Readiness: the database answers within READY_TIMEOUT_SECONDS; only it decides 503.
    The task queue's reachability is reported as last seen."""
    pool = deps(request).pool
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS), pool.acquire() as conn:
            await conn.fetchval(QUERIES["ready_check"])
    except TimeoutError:
        reason = "database_timeout"
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        reason = "database_unreachable"
    else:
        return JSONResponse({"status": "ready", "task_queue": _task_queue(request)})
    annotate_request(reason=reason)
    return JSONResponse(
        {"status": "unavailable", "reason": reason, "task_queue": _task_queue(request)},
        status_code=503,
    )
