"""Channel sync against its floors: ``make bench-channels``.

1. Export: ``GET /ical/<token>.ics`` of one room type's calendar with 365 days of mixed
   held, booked and blocked nights, exactly as the public role serves it (``python -m app
   serve``, one process, its own durable Postgres), loaded by wrk at 32 clients, against
   ``GET /health`` on the same server; phases alternate three times and the medians give
   ``export_ratio`` = export req/s / health req/s (target >= 0.3).
2. Apply: a 500-event feed applied to an empty calendar with ``apply_calendar_feed`` (the
   sync task's transaction), then the same feed again (nothing changed), each timed; the
   floor is a transaction that inserts the same block and block-night rows with plain
   ``INSERT … SELECT`` (no diff, no locks, no counters). Three interleaved rounds, each
   on a calendar of its own, medians; targets: apply <= 5x the floor, re-apply <= 1x.

The last stdout line is JSON: export_ratio, apply_ms, reapply_ms, floor_ms (and the
ratios beside them). wrk must be installed (``make bench-channels`` does it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from app import db
from app.channels.tokens import export_token
from app.dev.postgres import free_port, start_postgres
from app.inventory.holds import HoldRequest, Unit, create_hold
from app.inventory.property_file import CalendarSpec, PropertySpec, RoomTypeSpec
from app.inventory.setup import import_property
from app.inventory.stay import Party, Stay
from app.migrate import migrate
from app.pii import PiiKeys, pii_keys
from app.settings import Secret, Settings

SEED = 20261202
ROUNDS = 3
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
CLIENTS = 32
EVENTS = 500
ICAL_SECRET = "bench-ical-secret"  # noqa: S105 (a throwaway local key)
PII_KEY = "aG90ZWxseS1sb2NhbC1waWkta2V5LTAxMjM0NTY3ODk="
CONTACT_HASH_KEY = "aG90ZWxseS1sb2NhbC1jb250YWN0LWhhc2gta2V5LTA="
ROOT = Path(__file__).resolve().parents[1]
TZ = ZoneInfo("America/Sao_Paulo")


def _spec(code: str, today: dt.date, units: int) -> PropertySpec:
    return PropertySpec(
        code=code,
        name="Pousada Bench",
        timezone="America/Sao_Paulo",
        currency="BRL",
        whatsapp={},
        room_types=(
            RoomTypeSpec(
                "std",
                "Std",
                2,
                units,
                30000,
                calendars=(
                    CalendarSpec("airbnb", "https://channel.example/airbnb.ics"),
                    CalendarSpec("booking"),
                ),
            ),
        ),
        overrides=(),
        start=today,
        end=today + dt.timedelta(days=364),
    )


def _pii(url: str) -> PiiKeys:
    keys = {"pii_key": Secret(PII_KEY), "contact_hash_key": Secret(CONTACT_HASH_KEY)}
    return pii_keys(Settings(Secret(url), **keys))


async def _mixed_calendar(url: str, today: dt.date) -> str:
    """A room type of 3 units over 365 days: holds, reservations and channel blocks on
    random stays, so the feed has runs of every kind. Returns the export token."""
    rng = random.Random(SEED)
    pii = pii_keys(
        Settings(Secret(url), pii_key=Secret(PII_KEY), contact_hash_key=Secret(CONTACT_HASH_KEY))
    )
    conn = await db.connect(url)
    try:
        await import_property(conn, _spec("bench-inn", today, 3), pii=pii, ical_secret=ICAL_SECRET)
        prop = await conn.fetchval("SELECT id FROM properties WHERE code = 'bench-inn'")
        room = await conn.fetchval("SELECT id FROM room_types WHERE property_id = $1", prop)
        for n in range(240):
            first = today + dt.timedelta(days=rng.randrange(1, 360))
            stay = Stay(first, first + dt.timedelta(days=rng.randrange(1, 4)), 2)
            request = HoldRequest(prop, stay, (Unit(room, Party(2)),), f"bench-{n}")
            try:
                hold = await create_hold(conn, request, ttl_seconds=86_400)
            except Exception:  # noqa: S112 (a full night: the next stay)
                continue
            if n % 2:
                await conn.fetchrow(
                    "SELECT * FROM convert_hold($1, 'stripe', $2, $3, 'brl', NULL, NULL)",
                    hold.id,
                    f"cs_bench_{n}",
                    hold.total_cents,
                )
        airbnb = await conn.fetchval("SELECT id FROM calendars WHERE name = 'airbnb'")
        uids, checkins, checkouts = [], [], []
        for n in range(60):
            first = today + dt.timedelta(days=rng.randrange(1, 360))
            uids.append(f"bench-{n}@airbnb.com")
            checkins.append(first)
            checkouts.append(first + dt.timedelta(days=rng.randrange(1, 5)))
        await conn.fetchrow(
            "SELECT * FROM apply_calendar_feed($1, $2, $3, $4, $5, 'bench')",
            airbnb,
            uids,
            checkins,
            checkouts,
            [False] * len(uids),
        )
    finally:
        await conn.close()
    return export_token(ICAL_SECRET, "bench-inn", "std", "booking", 0)


def _wrk(url: str, seconds: float) -> float:
    done = subprocess.run(
        ["wrk", "-t1", f"-c{CLIENTS}", f"-d{seconds:g}s", url],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if done.returncode != 0 or found is None or "Non-2xx" in done.stdout:
        raise SystemExit(f"wrk failed on {url}: {done.stdout}{done.stderr}")
    return float(found.group(1))


def _serve(url: str, port: int, log: Path, **more: str) -> subprocess.Popen[bytes]:
    """The public role as `python -m app serve` runs it, on its own, with ``more`` env."""
    worker = f"http://127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "ROLE": "public",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "INFO",
        "STRIPE_WEBHOOK_SECRET": "whsec_bench",
        "TASKS_PROJECT": "bench",
        "TASKS_LOCATION": "southamerica-east1",
        "TASKS_EMULATOR_HOST": f"127.0.0.1:{free_port()}",
        "WORKER_URL": worker,
        "TASKS_SERVICE_ACCOUNT": "tasks@bench.iam.gserviceaccount.com",
        "WHATSAPP_VERIFY_TOKEN": "bench",
        "WHATSAPP_APP_SECRET": "bench",
        "PII_KEY": PII_KEY,
        "CONTACT_HASH_KEY": CONTACT_HASH_KEY,
        **more,
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app", "serve"], cwd=ROOT, env=env, stdout=out, stderr=out
        )


def _export_ratio(url: str, token: str, workdir: Path) -> dict[str, float]:
    port = free_port()
    server = _serve(url, port, workdir / "public.log")
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while subprocess.run(["curl", "-sf", f"{base}/health"], capture_output=True).returncode:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the public server did not start")
            time.sleep(0.1)
        feed = f"{base}/ical/{token}.ics"
        check = subprocess.run(["curl", "-sf", feed], capture_output=True, check=True).stdout
        assert check.count(b"BEGIN:VEVENT") > 20, "the feed should have many runs"
        _wrk(feed, 2), _wrk(f"{base}/health", 2)  # warm up
        export, health = [], []
        for _ in range(ROUNDS):
            export.append(_wrk(feed, SECONDS))
            health.append(_wrk(f"{base}/health", SECONDS))
    finally:
        server.terminate()
        server.wait(timeout=15)
    return {
        "export_rps": statistics.median(export),
        "health_rps": statistics.median(health),
        "runs": float(check.count(b"BEGIN:VEVENT")),
    }


def _feed(today: dt.date) -> tuple[list[str], list[dt.date], list[dt.date]]:
    rng = random.Random(SEED + 1)
    uids, checkins, checkouts = [], [], []
    for n in range(EVENTS):
        first = today + dt.timedelta(days=rng.randrange(1, 360))
        uids.append(f"{n:04d}-{rng.getrandbits(64):016x}@airbnb.com")
        checkins.append(first)
        checkouts.append(first + dt.timedelta(days=rng.randrange(1, 5)))
    return uids, checkins, checkouts


async def _apply_rounds(url: str, today: dt.date) -> dict[str, float]:
    """Each round: a fresh property of its own; apply the feed, apply it again, and the
    floor's plain inserts of the same rows on another fresh calendar."""
    uids, checkins, checkouts = _feed(today)
    conn = await db.connect(url)
    apply, reapply, floor = [], [], []
    try:
        for r in range(ROUNDS):
            for side in ("ours", "floor"):
                code = f"apply-{r}-{side}"
                await import_property(
                    conn, _spec(code, today, 1000), pii=_pii(url), ical_secret=ICAL_SECRET
                )
                prop = await conn.fetchval("SELECT id FROM properties WHERE code = $1", code)
                calendar, room = await conn.fetchrow(
                    "SELECT id, room_type_id FROM calendars WHERE property_id = $1"
                    " AND name = 'airbnb'",
                    prop,
                )
                await conn.execute("CHECKPOINT")
                if side == "ours":
                    for times in (apply, reapply):
                        started = time.perf_counter()
                        await conn.fetchrow(
                            "SELECT * FROM apply_calendar_feed($1, $2, $3, $4, $5, 'bench')",
                            calendar,
                            uids,
                            checkins,
                            checkouts,
                            [False] * EVENTS,
                        )
                        times.append((time.perf_counter() - started) * 1000)
                else:
                    started = time.perf_counter()
                    async with conn.transaction():
                        await conn.execute(
                            FLOOR_BLOCKS, prop, room, calendar, uids, checkins, checkouts
                        )
                        await conn.execute(FLOOR_NIGHTS, calendar, room)
                    floor.append((time.perf_counter() - started) * 1000)
    finally:
        await conn.close()
    return {
        "apply_ms": statistics.median(apply),
        "reapply_ms": statistics.median(reapply),
        "floor_ms": statistics.median(floor),
    }


FLOOR_BLOCKS = """
INSERT INTO blocks (property_id, room_type_id, source, calendar_id, external_uid, checkin,
                    checkout, units)
SELECT $1, $2, 'ical', $3, f.uid, f.checkin, f.checkout, 1
FROM unnest($4::text[], $5::date[], $6::date[]) AS f(uid, checkin, checkout)
"""
FLOOR_NIGHTS = """
INSERT INTO block_nights (block_id, room_type_id, date, qty)
SELECT b.id, $2, d::date, 1
FROM blocks b, generate_series(b.checkin, b.checkout - 1, interval '1 day') AS d
WHERE b.calendar_id = $1
"""


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("bench-channels needs wrk (apt-get install -y wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="hotelly-bench-channels-"))
    workdir.chmod(0o755)
    server = start_postgres(workdir / "pg", durable=True)
    try:
        url = server.url("bench")
        migrate(url)
        today = dt.datetime.now(TZ).date()
        token = asyncio.run(_mixed_calendar(url, today))
        export = _export_ratio(url, token, workdir)
        applied = asyncio.run(_apply_rounds(url, today))
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "export_ratio": round(export["export_rps"] / export["health_rps"], 3),
        "export_rps": round(export["export_rps"], 1),
        "health_rps": round(export["health_rps"], 1),
        "feed_runs": int(export["runs"]),
        "apply_ms": round(applied["apply_ms"], 2),
        "reapply_ms": round(applied["reapply_ms"], 2),
        "floor_ms": round(applied["floor_ms"], 2),
        "apply_vs_floor": round(applied["apply_ms"] / applied["floor_ms"], 2),
        "reapply_vs_floor": round(applied["reapply_ms"] / applied["floor_ms"], 2),
    }
    print(
        f"export {result['export_rps']:,} req/s vs health {result['health_rps']:,} req/s:"
        f" ratio {result['export_ratio']} (target >= 0.3), {result['feed_runs']} runs"
    )
    print(
        f"apply {result['apply_ms']} ms ({result['apply_vs_floor']}x floor, target <= 5),"
        f" re-apply {result['reapply_ms']} ms ({result['reapply_vs_floor']}x, target <= 1),"
        f" floor {result['floor_ms']} ms"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
