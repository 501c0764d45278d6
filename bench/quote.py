"""Quote latency against its floor: ``make bench-quote``.

What is measured: ``app.inventory.quote.quote`` exactly as the app calls it, for a
stay of 1-7 nights at a random date of a 365-day calendar of 5 room types, one call
after another on one connection (a guest waits for one quote, so latency is what
matters, not throughput). Two scenarios:

- **plain**: a 2-adult party, one rate per night;
- **rules**: a party of 2 adults and 2 children (5 and 8) on a calendar with weekend
  rates, an extra-adult price, children's bands and, every 30 days, a 5-day package
  season (its own rates, a 4-night minimum stay, closed to arrival on its last day and
  to departure on its first). The floor is a plain ``SELECT`` of the same ``ari_days`` rows
(every room type's nights of the stay): the least any quote must read. ours/floor says
what the quote adds (its query's joins and the Python that prices and filters) on this
machine, rather than how fast the machine is.

Phases alternate ours, floor three times over the same stays; the medians of the
phases' p50 and p99 are reported. The last line is JSON: per scenario, ``ours`` and
``floor`` p50/p99 in ms and ``ratio`` (ours p50 / floor p50).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import uvloop

from app.db import connect
from app.dev.postgres import start_postgres
from app.inventory.properties import Property, get_property
from app.inventory.property_file import ChildRate, PropertySpec, RoomTypeSpec, SeasonSpec
from app.inventory.quote import quote
from app.inventory.setup import import_property
from app.inventory.stay import Party, Stay
from app.migrate import migrate

SEED = 20261202
ROUNDS = 3
WARMUP_SECONDS = 1.0
TIMEZONE = "America/Sao_Paulo"
DAYS = 365
ROOM_TYPES = 5
MAX_NIGHTS = 7

FLOOR = """
SELECT a.room_type_id, a.date, a.rate_cents, a.stop_sell, a.inv_total, a.inv_held,
       a.inv_booked, a.inv_blocked
FROM ari_days a JOIN room_types rt ON rt.id = a.room_type_id
WHERE rt.property_id = $1 AND a.date >= $2 AND a.date < $3
ORDER BY a.room_type_id, a.date
"""


@dataclass(frozen=True)
class Scenario:
    name: str
    prop: Property
    first_night: dt.date
    party: Party

    def stay(self, rng: random.Random) -> Stay:
        nights = rng.randint(1, MAX_NIGHTS)
        # The last calendar date is a check-out morning only.
        checkin = self.first_night + dt.timedelta(days=rng.randint(0, DAYS - 1 - nights))
        return Stay(checkin, checkin + dt.timedelta(days=nights), self.party.guests)


Attempt = Callable[[asyncpg.Connection, Stay], Awaitable[object]]


def ours(scenario: Scenario) -> Attempt:
    async def attempt(conn: asyncpg.Connection, stay: Stay) -> object:
        return await quote(conn, scenario.prop, stay, scenario.party, today=scenario.first_night)

    return attempt


def floor(scenario: Scenario) -> Attempt:
    async def attempt(conn: asyncpg.Connection, stay: Stay) -> object:
        return await conn.fetch(FLOOR, scenario.prop.id, stay.checkin, stay.checkout)

    return attempt


async def _phase(
    conn: asyncpg.Connection, scenario: Scenario, attempt: Attempt, seconds: float
) -> list[float]:
    rng = random.Random(SEED)  # every phase replays the same stays, as far as it gets
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        stay = scenario.stay(rng)
        start = time.perf_counter()
        await attempt(conn, stay)
        latencies.append(time.perf_counter() - start)
    return latencies


def _ms(latencies: list[float], q: int) -> float:
    return statistics.quantiles(latencies, n=100)[q - 1] * 1000


async def _run(conn: asyncpg.Connection, scenario: Scenario, seconds: float) -> dict[str, float]:
    sides = {"ours": ours(scenario), "floor": floor(scenario)}
    for attempt in sides.values():  # prepared statements, cached plans, warm buffers
        await _phase(conn, scenario, attempt, WARMUP_SECONDS)
    p50: dict[str, list[float]] = {side: [] for side in sides}
    p99: dict[str, list[float]] = {side: [] for side in sides}
    for round_ in range(1, ROUNDS + 1):
        for side, attempt in sides.items():
            latencies = await _phase(conn, scenario, attempt, seconds)
            p50[side].append(_ms(latencies, 50))
            p99[side].append(_ms(latencies, 99))
            print(
                f"{scenario.name} {side} {round_}/{ROUNDS}: {len(latencies)} quotes,"
                f" p50 {p50[side][-1]:.3f} ms, p99 {p99[side][-1]:.3f} ms",
                file=sys.stderr,
                flush=True,
            )
    result = {
        f"{side}_{q}_ms": round(statistics.median(values[side]), 3)
        for side in sides
        for q, values in (("p50", p50), ("p99", p99))
    }
    result["ratio"] = round(result["ours_p50_ms"] / result["floor_p50_ms"], 3)
    return result


def _property(code: str, first_night: dt.date) -> PropertySpec:
    return PropertySpec(
        code=code,
        name=f"Bench {code}",
        timezone=TIMEZONE,
        currency="BRL",
        whatsapp={},
        room_types=tuple(
            RoomTypeSpec(f"rt{i}", f"Room type {i}", 2 + i % 3, 3, 35_000 + 5_000 * i)
            for i in range(ROOM_TYPES)
        ),
        overrides=(),
        start=first_night,
        end=first_night + dt.timedelta(days=DAYS - 1),
    )


def _rules_property(code: str, first_night: dt.date) -> PropertySpec:
    plain = _property(code, first_night)
    rooms = tuple(
        RoomTypeSpec(
            r.code,
            r.name,
            r.max_occupancy + 2,
            r.units,
            r.rate_cents,
            base_occupancy=2,
            extra_adult_cents=9_000,
            max_adults=r.max_occupancy,
        )
        for r in plain.room_types
    )
    codes = [r.code for r in rooms]
    weekend = SeasonSpec(
        first_night,
        first_night + dt.timedelta(days=DAYS - 1),
        frozenset({4, 5}),
        {code: {"rate_cents": 45_000} for code in codes},
    )
    packages = []
    for start in range(10, DAYS - 5, 30):
        first = first_night + dt.timedelta(days=start)
        last = first + dt.timedelta(days=4)
        package = {"rate_cents": 70_000, "extra_adult_cents": 15_000, "min_stay": 4}
        packages += [
            SeasonSpec(first, last, None, dict.fromkeys(codes, package)),
            SeasonSpec(last, last, None, {code: {"closed_to_arrival": True} for code in codes}),
            SeasonSpec(first, first, None, {code: {"closed_to_departure": True} for code in codes}),
        ]
    return PropertySpec(
        **{
            **vars(plain),
            "room_types": rooms,
            "children": (ChildRate(5, 0), ChildRate(11, 50)),
            "seasons": (weekend, *packages),
        }
    )


async def _bench(url: str, seconds: float) -> dict[str, dict[str, float]]:
    conn = await connect(url)
    try:
        first_night = dt.datetime.now(ZoneInfo(TIMEZONE)).date() + dt.timedelta(days=1)
        await import_property(conn, _property("bench-plain", first_night))
        await import_property(conn, _rules_property("bench-rules", first_night))
        scenarios = [
            Scenario("plain", await get_property(conn, "bench-plain"), first_night, Party(2)),
            Scenario(
                "rules", await get_property(conn, "bench-rules"), first_night, Party(2, (5, 8))
            ),
        ]
        await conn.execute("ANALYZE")
        return {s.name: await _run(conn, s, seconds) for s in scenarios}
    finally:
        await conn.close()


def main() -> None:
    seconds = float(os.environ.get("BENCH_SECONDS", "5"))
    tmp = Path(tempfile.mkdtemp(prefix="hotelly-bench-pg-"))
    try:
        tmp.chmod(0o755)  # the server runs unprivileged when we are root and must reach it
        server = start_postgres(tmp / "pg", max_connections=20, durable=True)
        try:
            url = server.url("bench")
            migrate(url)
            results = uvloop.run(_bench(url, seconds))
        finally:
            server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'scenario':<10} {'ours p50':>9} {'ours p99':>9} {'floor p50':>10} {'ratio':>6}")
    for name, r in results.items():
        print(
            f"{name:<10} {r['ours_p50_ms']:>9.3f} {r['ours_p99_ms']:>9.3f}"
            f" {r['floor_p50_ms']:>10.3f} {r['ratio']:>6.2f}"
        )
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
