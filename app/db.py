"""asyncpg pool and the named-query loader.

SQL lives in ``sql/queries/*.sql`` as named blocks, procrastinate style::

    -- ready_check --
    -- One line saying what the query is for.
    SELECT 1

Blocks are loaded once into ``QUERIES``; callers use ``QUERIES["ready_check"]``
with ``$n`` parameters. Nothing formats values into SQL text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import asyncpg
import orjson

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
# What the driver raises when the database cannot be reached or went away mid-request: a
# reason to answer "try again" (503), never a bug's 500.
UNREACHABLE: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up
    asyncpg.InterfaceError,  # the connection is closed
)
# A connection attempt that hangs (a partitioned network) fails after this, not 60 s.
CONNECT_TIMEOUT_SECONDS = 5.0
# No statement of ours runs for long; one that does is stuck behind a dead database.
COMMAND_TIMEOUT_SECONDS = 30.0
_HEADER = re.compile(r"^-- ([a-z0-9_]+) --$", re.MULTILINE)
# How a connection names itself in pg_stat_activity (ops db breaks connections down by it):
# a serving role's pool is ``hotelly-<role>``, everything else a command line's.
CLI_APPLICATION = "hotelly-cli"


def application_name(role: str | None) -> str:
    return f"hotelly-{role}" if role else CLI_APPLICATION


def load_queries(directory: Path = SQL_DIR / "queries") -> dict[str, str]:
    queries: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        parts = _HEADER.split(path.read_text())
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in queries:
                raise ValueError(f"query {name!r} is defined twice ({path.name})")
            queries[name] = body.strip()
    return queries


QUERIES = load_queries()


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out as Python objects, encoded by orjson.
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda value: orjson.dumps(value).decode(),
        decoder=orjson.loads,
        schema="pg_catalog",
    )


async def connect(dsn: str, **kwargs: Any) -> asyncpg.Connection:
    """One connection, set up like the pool's (for CLI commands and tests)."""
    kwargs.setdefault("server_settings", {"application_name": CLI_APPLICATION})
    conn = await asyncpg.connect(dsn, **kwargs)
    await _init_connection(conn)
    return conn


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's default session reset (RESET ALL, UNLISTEN *, …).

    asyncpg still rolls back an open transaction before calling this. The app keeps
    no session state on pooled connections (no SET, LISTEN or advisory locks: the
    critical functions carry their own lock_timeout), so the reset was a round trip
    per release for nothing — on the webhook path, one of its four.
    """


async def create_pool(dsn: str, max_size: int, application: str = CLI_APPLICATION) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=max_size,
        server_settings={"application_name": application},
        init=_init_connection,
        reset=_keep_session,
        # Recycle idle connections so a Cloud SQL failover does not leave dead ones.
        max_inactive_connection_lifetime=300,
        timeout=CONNECT_TIMEOUT_SECONDS,
        command_timeout=COMMAND_TIMEOUT_SECONDS,
    )
    assert pool is not None
    return pool
