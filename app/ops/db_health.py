"""Cloud SQL saturated (runbook §7.7): who holds the connections, which transactions stay
open, who waits for whose locks, and whether the roles' pools fit the server.

The connections come from pg_stat_activity, broken down by the application name each
process gives itself (app/db.py). The pools are what deploy/cloudrun/*.yaml declares
(app/deploy/pools.py), read from a checkout: the production image has neither those files
nor the deploy code, so there the pools are reported unavailable, with why.

Nothing here reads a query's text: its parameters may be a guest's details.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg

from app.db import QUERIES

if TYPE_CHECKING:
    from app.deploy.pools import RolePool

# The runbook's long transaction: a critical transaction takes milliseconds, a sweep batch
# about a second, so one open a minute holds its locks (and vacuum) for no good reason.
LONG_TRANSACTION_SECONDS = 60
# With less than a tenth of the server's connections free, a deploy (Cloud Run starts the
# new revision, with its pools, before the old one stops) or a burst can exhaust them.
NEAR_MAX_SHARE = 0.9


@dataclass(frozen=True)
class DbHealth:
    connections: list[dict[str, Any]]  # application, state, connections
    max_connections: int
    reserved_connections: int
    server_connections: int
    long_transactions: list[dict[str, Any]]
    lock_waits: list[dict[str, Any]]
    longer_than: int  # the seconds a transaction had to be open to be listed
    pools: list[RolePool] | str  # str: why they could not be read

    @property
    def usable_connections(self) -> int:
        return self.max_connections - self.reserved_connections

    @property
    def pools_total(self) -> int | None:
        """The most connections the services' pools can open together."""
        if isinstance(self.pools, str):
            return None
        return sum(pool.connections for pool in self.pools)

    def problems(self) -> list[str]:
        found = []
        if self.long_transactions:
            found.append("long_transactions")
        if self.lock_waits:
            found.append("lock_waits")
        if self.server_connections >= NEAR_MAX_SHARE * self.usable_connections:
            found.append("connections_near_max")
        if self.pools_total is not None and self.pools_total > self.usable_connections:
            found.append("pools_exceed_max_connections")
        return found


def declared_pools() -> list[RolePool] | str:
    """Each service's pool as its deploy file declares it, or why it cannot be read."""
    try:
        from app.deploy.pools import declared_pools as read_pools
    except ModuleNotFoundError as exc:
        return f"the deploy files are read from a checkout (make install): {exc}"
    try:
        return read_pools()
    except OSError as exc:
        return f"the deploy files are read from a checkout: {exc.strerror}: {exc.filename}"


async def db_health(conn: asyncpg.Connection, longer_than: int | None = None) -> DbHealth:
    """The database's connections, transactions open longer than ``longer_than`` seconds
    (LONG_TRANSACTION_SECONDS unless told), lock waits, read now, and the pools the deploy
    files declare."""
    if longer_than is None:
        longer_than = LONG_TRANSACTION_SECONDS
    capacity = await conn.fetchrow(QUERIES["db_capacity"])
    assert capacity is not None
    return DbHealth(
        connections=[dict(row) for row in await conn.fetch(QUERIES["db_connections"])],
        max_connections=capacity["max_connections"],
        reserved_connections=capacity["reserved_connections"],
        server_connections=capacity["server_connections"],
        long_transactions=[
            dict(row) for row in await conn.fetch(QUERIES["db_long_transactions"], longer_than)
        ],
        lock_waits=[dict(row) for row in await conn.fetch(QUERIES["db_lock_waits"])],
        longer_than=longer_than,
        pools=declared_pools(),
    )


def _transaction(row: dict[str, Any]) -> str:
    line = (
        f"  pid {row['pid']} {row['application']} {row['state']}: open "
        f"{row['transaction_seconds']} s, {row['state_seconds']} s in this state"
    )
    if row["wait_event"]:
        line += f", waiting on {row['wait_event_type']}/{row['wait_event']}"
    return line


def _lock_wait(row: dict[str, Any]) -> str:
    return (
        f"  pid {row['blocked_pid']} ({row['blocked_application']}) waits "
        f"{row['waiting_seconds']} s on {row['relation'] or 'a transaction'} "
        f"({row['wait_event_type']}/{row['wait_event']}) for pid {row['blocking_pid']} "
        f"({row['blocking_application']}, {row['blocking_state']})"
    )


def report(health: DbHealth) -> list[str]:
    """The human lines of ``ops db``."""
    lines = [
        f"connections: {health.server_connections} on the server of max_connections "
        f"{health.max_connections} ({health.reserved_connections} kept for superusers)"
    ]
    lines += [
        f"  {row['application']:<20} {row['state']:<30} {row['connections']}"
        for row in health.connections
    ]
    lines.append(f"transactions open over {health.longer_than} s: {len(health.long_transactions)}")
    lines += [_transaction(row) for row in health.long_transactions]
    lines.append(f"lock waits: {len(health.lock_waits)}")
    lines += [_lock_wait(row) for row in health.lock_waits]
    if isinstance(health.pools, str):
        lines.append(f"pools: unavailable: {health.pools}")
        return lines
    lines.append(
        f"pools (deploy/cloudrun): {health.pools_total} connections at most, "
        f"of {health.usable_connections} usable"
    )
    lines += [
        f"  {pool.service} ({pool.role}): DB_POOL_MAX {pool.pool_max} x "
        f"{pool.max_instances} instances = {pool.connections}"
        for pool in health.pools
    ]
    return lines


def summary(health: DbHealth) -> dict[str, Any]:
    """The machine-readable ``ops db``."""
    pools: dict[str, Any] = (
        {"pools": None, "pools_unavailable": health.pools}
        if isinstance(health.pools, str)
        else {
            "pools": [dataclasses.asdict(p) | {"connections": p.connections} for p in health.pools]
        }
    )
    return {
        "connections": health.connections,
        "server_connections": health.server_connections,
        "max_connections": health.max_connections,
        "reserved_connections": health.reserved_connections,
        "long_transactions": health.long_transactions,
        "lock_waits": health.lock_waits,
        **pools,
        "problems": health.problems(),
    }
