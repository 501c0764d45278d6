"""Hold throughput against its floor: ``make bench-holds``.

What is measured: ``app.inventory.holds.create_hold`` exactly as the app calls it, a
fresh idempotency key per attempt. Each call is one transaction in one round trip (the
SQL function: idempotency lookup, property and price reads, INSERTs of the hold, its
nights and its outbox event, then the ordered claim of the nights). Two loads, on a
throwaway Postgres with Debian's durable defaults (fsync, synchronous_commit on):

* hot: 64 clients all claiming the same room-night;
* calendar: 32 clients claiming random 1-7 night stays of one of 10 room types over 90 days.

Capacity is never reached, so every attempt does the full work and succeeds.

The floor is the least any claim must do: the one conditional UPDATE of the same rows
(several nights are locked in (room type, date) order by a CTE, as create_hold does),
autocommit. On a contended row throughput is bounded by how long its lock is held, from
the UPDATE to the WAL flush of the COMMIT, so ours/floor says how close the whole
transaction comes to that bound on this machine rather than how fast the machine is.
Both sides run the same client loop over the same asyncpg connections in this process;
the only client-side difference is create_hold's own Python work (request validation,
fingerprint, result mapping), which is part of what is measured.

Phases alternate ours, floor three times and the medians are reported, so slow drift
(a noisy machine, autovacuum) lands on both sides. One drift is ours alone: every
attempt of ours adds a row to holds, hold_nights and outbox_events (tens of thousands
per run, never removed), so their indexes grow between ours' phases; at these sizes that
costs little. A CHECKPOINT before each phase makes each start from clean buffers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import uvloop

from app.db import connect
from app.dev.postgres import start_postgres
from app.inventory.holds import HoldRequest, Unit, create_hold
from app.inventory.property_file import PropertySpec, RoomTypeSpec
from app.inventory.setup import import_property
from app.inventory.stay import Party, Stay
from app.migrate import migrate

SEED = 20261123
ROUNDS = 3
WARMUP_SECONDS = 1.0
MAX_CONNECTIONS = 200
TIMEZONE = "America/Sao_Paulo"
CAPACITY = 100_000_000  # units per night: far more than any run attempts
GUESTS = 2
QUANTITY = 1
TTL_SECONDS = 900

# One night: the single conditional UPDATE.
ONE_NIGHT_FLOOR = """
UPDATE ari_days SET inv_held = inv_held + $3
WHERE room_type_id = $1 AND date = $2 AND inv_held + inv_booked + inv_blocked + $3 <= inv_total
"""
# Several nights: the same UPDATE over rows locked in (room type, date) order.
STAY_FLOOR = """
WITH locked AS (
    SELECT id FROM ari_days WHERE room_type_id = $1 AND date >= $2 AND date < $3
    ORDER BY room_type_id, date
    FOR NO KEY UPDATE
)
UPDATE ari_days a SET inv_held = a.inv_held + $4
FROM locked l
WHERE a.id = l.id AND a.inv_held + a.inv_booked + a.inv_blocked + $4 <= a.inv_total
"""


@dataclass(frozen=True)
class Pick:
    room_type_id: int
    checkin: dt.date
    nights: int

    @property
    def checkout(self) -> dt.date:
        return self.checkin + dt.timedelta(days=self.nights)


@dataclass(frozen=True)
class Scenario:
    name: str
    clients: int
    property_id: int
    room_type_ids: tuple[int, ...]
    first_night: dt.date
    days: int
    max_nights: int

    def pick(self, rng: random.Random) -> Pick:
        """A random stay of one room type, inside the calendar."""
        nights = rng.randint(1, self.max_nights)
        return Pick(
            room_type_id=rng.choice(self.room_type_ids),
            checkin=self.first_night + dt.timedelta(days=rng.randint(0, self.days - nights)),
            nights=nights,
        )


Attempt = Callable[[asyncpg.Connection, Pick], Awaitable[None]]


@dataclass(frozen=True)
class Phase:
    tps: float
    latencies: list[float]  # seconds, one per attempt


@dataclass(frozen=True)
class Result:
    ours: float  # median tps
    floor: float  # median tps
    p99_ms: float

    @property
    def ratio(self) -> float:
        return self.ours / self.floor


def ours(scenario: Scenario) -> Attempt:
    async def attempt(conn: asyncpg.Connection, pick: Pick) -> None:
        request = HoldRequest(
            property_id=scenario.property_id,
            stay=Stay(pick.checkin, pick.checkout, GUESTS),
            units=(Unit(pick.room_type_id, Party(GUESTS)),),
            idempotency_key=uuid.uuid4().hex,
        )
        # Raises on anything but a new hold: a benchmark of failures measures nothing.
        hold = await create_hold(conn, request, ttl_seconds=TTL_SECONDS)
        assert not hold.replayed

    return attempt


def floor(scenario: Scenario) -> Attempt:
    async def attempt(conn: asyncpg.Connection, pick: Pick) -> None:
        if scenario.max_nights == 1:
            status = await conn.execute(ONE_NIGHT_FLOOR, pick.room_type_id, pick.checkin, QUANTITY)
        else:
            status = await conn.execute(
                STAY_FLOOR, pick.room_type_id, pick.checkin, pick.checkout, QUANTITY
            )
        if status != f"UPDATE {pick.nights}":
            raise RuntimeError(f"floor claimed {status!r} of {pick.nights} nights")

    return attempt


async def _client(
    conn: asyncpg.Connection,
    scenario: Scenario,
    attempt: Attempt,
    rng: random.Random,
    deadline: float,
    latencies: list[float],
) -> None:
    """Attempts back to back until the deadline."""
    while time.perf_counter() < deadline:
        pick = scenario.pick(rng)
        start = time.perf_counter()
        await attempt(conn, pick)
        latencies.append(time.perf_counter() - start)


async def _phase(
    conns: list[asyncpg.Connection], scenario: Scenario, attempt: Attempt, seconds: float
) -> Phase:
    # Every phase replays the same per-client stays, as far as it gets.
    per_client: list[list[float]] = [[] for _ in conns]
    start = time.perf_counter()
    await asyncio.gather(
        *(
            _client(conn, scenario, attempt, random.Random(SEED + i), start + seconds, sink)
            for i, (conn, sink) in enumerate(zip(conns, per_client, strict=True))
        )
    )
    elapsed = time.perf_counter() - start
    latencies = [latency for sink in per_client for latency in sink]
    return Phase(tps=len(latencies) / elapsed, latencies=latencies)


def _p99_ms(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98] * 1000


async def _run(url: str, scenario: Scenario, seconds: float) -> Result:
    conns = list(await asyncio.gather(*(connect(url) for _ in range(scenario.clients))))
    try:
        sides = {"ours": ours(scenario), "floor": floor(scenario)}
        for attempt in sides.values():  # prepared statements, cached plans, warm buffers
            await _phase(conns, scenario, attempt, WARMUP_SECONDS)
        phases: dict[str, list[Phase]] = {side: [] for side in sides}
        for round_ in range(1, ROUNDS + 1):
            for side, attempt in sides.items():
                await conns[0].execute("CHECKPOINT")
                phase = await _phase(conns, scenario, attempt, seconds)
                phases[side].append(phase)
                print(
                    f"{scenario.name} {side} {round_}/{ROUNDS}: {phase.tps:,.0f} tps,"
                    f" p99 {_p99_ms(phase.latencies):.1f} ms",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        await asyncio.gather(*(conn.close() for conn in conns))
    return Result(
        ours=statistics.median(phase.tps for phase in phases["ours"]),
        floor=statistics.median(phase.tps for phase in phases["floor"]),
        # p99 of ours pooled over all its phases' attempts (not a median of per-phase p99s).
        p99_ms=_p99_ms([latency for phase in phases["ours"] for latency in phase.latencies]),
    )


def _property(code: str, room_types: int, first_night: dt.date, days: int) -> PropertySpec:
    return PropertySpec(
        code=code,
        name=f"Bench {code}",
        timezone=TIMEZONE,
        currency="BRL",
        whatsapp={},
        room_types=tuple(
            RoomTypeSpec(f"rt{i}", f"Room type {i}", GUESTS, CAPACITY, 35_000 + 1_000 * i)
            for i in range(room_types)
        ),
        overrides=(),
        start=first_night,
        end=first_night + dt.timedelta(days=days),  # and the last night's check-out morning
    )


async def _scenario(
    conn: asyncpg.Connection,
    name: str,
    *,
    clients: int,
    room_types: int,
    days: int,
    max_nights: int,
) -> Scenario:
    # From tomorrow at the property, so no check-in turns "past" during a run.
    first_night = dt.datetime.now(ZoneInfo(TIMEZONE)).date() + dt.timedelta(days=1)
    imported = await import_property(
        conn, _property(f"bench-{name}", room_types, first_night, days)
    )
    rows = await conn.fetch(
        "SELECT id FROM room_types WHERE property_id = $1 ORDER BY id", imported.property_id
    )
    return Scenario(
        name=name,
        clients=clients,
        property_id=imported.property_id,
        room_type_ids=tuple(row["id"] for row in rows),
        first_night=first_night,
        days=days,
        max_nights=max_nights,
    )


async def _bench(url: str, seconds: float) -> dict[str, Result]:
    conn = await connect(url)
    try:
        scenarios = [
            await _scenario(conn, "hot", clients=64, room_types=1, days=1, max_nights=1),
            await _scenario(conn, "calendar", clients=32, room_types=10, days=90, max_nights=7),
        ]
    finally:
        await conn.close()
    return {scenario.name: await _run(url, scenario, seconds) for scenario in scenarios}


def _report(results: dict[str, Result]) -> None:
    print(f"{'scenario':<10} {'ours tps':>10} {'floor tps':>10} {'ratio':>6} {'p99 ms':>8}")
    for name, r in results.items():
        print(f"{name:<10} {r.ours:>10,.0f} {r.floor:>10,.0f} {r.ratio:>6.2f} {r.p99_ms:>8.1f}")
    summary = {
        name: {
            "ours": round(r.ours, 1),
            "floor": round(r.floor, 1),
            "ratio": round(r.ratio, 3),
            "p99_ms": round(r.p99_ms, 2),
        }
        for name, r in results.items()
    }
    print(json.dumps(summary), flush=True)


def main() -> None:
    seconds = float(os.environ.get("BENCH_SECONDS", "10"))
    tmp = Path(tempfile.mkdtemp(prefix="hotelly-bench-pg-"))
    try:
        tmp.chmod(0o755)  # the server runs unprivileged when we are root and must reach it
        server = start_postgres(tmp / "pg", max_connections=MAX_CONNECTIONS, durable=True)
        try:
            url = server.url("bench")
            migrate(url)
            results = uvloop.run(_bench(url, seconds))
        finally:
            server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _report(results)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
