"""The console's heaviest pages against the same server's /health: ``make bench-console``.

The public role as ``python -m app serve`` runs it (one process, its own durable
Postgres), logged in with a session cookie (``dev console-session``'s), loaded by wrk at
16 clients: the calendar of 10 room types x 90 days, the reservations list's first page
over 10,000 reservations, a guest-name search (the blind index) among them, and
``GET /health``. Phases alternate three times; the medians of wrk's p50/p99 and req/s are
reported. Target: p99 < 150 ms on each page.

The reservations are written straight into their tables (hold, payment, reservation,
in three INSERT … SELECT), with sealed names and their index as the app writes them.
The last stdout line is JSON: calendar_p99_ms, reservations_p99_ms, search_p99_ms,
health_rps (and the p50s and req/s beside them). wrk must be installed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from app import db
from app.console import auth
from app.dev.postgres import free_port, start_postgres
from app.inventory.property_file import PropertySpec, RoomTypeSpec
from app.inventory.setup import import_property
from app.messaging.credentials import store_staff_numbers
from app.migrate import migrate
from app.pii import pii_keys
from app.settings import Secret, Settings
from bench.channels import CONTACT_HASH_KEY, PII_KEY, _serve

ROUNDS = 3
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
CLIENTS = 16
RESERVATIONS = 10_000
STAFF = "5548991234567"
TZ = ZoneInfo("America/Sao_Paulo")
NAMES = ["Ana Souza", "Bruno Lima", "Carla Dias", "Diego Alves", "Elisa Rocha", "Joana Canary"]


def _settings(url: str) -> Settings:
    return Settings(
        database_url=Secret(url), pii_key=Secret(PII_KEY), contact_hash_key=Secret(CONTACT_HASH_KEY)
    )


async def _inn(url: str, today: dt.date) -> str:
    """The inn, its reservations and a session; returns the session's cookie."""
    pii = pii_keys(_settings(url))
    conn = await db.connect(url)
    try:
        spec = PropertySpec(
            code="bench-inn",
            name="Pousada Bench",
            timezone="America/Sao_Paulo",
            currency="BRL",
            whatsapp={"phone_number_id": "pn-bench"},
            room_types=tuple(
                RoomTypeSpec(f"r{n}", f"Quarto {n}", 2, 5, 30000 + 1000 * n) for n in range(10)
            ),
            overrides=(),
            start=today - dt.timedelta(days=400),
            end=today + dt.timedelta(days=120),
        )
        await import_property(conn, spec)
        prop = await conn.fetchval("SELECT id FROM properties WHERE code = 'bench-inn'")
        await store_staff_numbers(conn, prop, (STAFF,), pii)
        sealed = [pii.encrypt(name, "guest_name") for name in NAMES]
        index = [pii.name_index(name) for name in NAMES]
        rows = [
            (
                n,
                today - dt.timedelta(days=400 - n % 500),
                sealed[n % len(NAMES)],
                index[n % len(NAMES)],
            )
            for n in range(RESERVATIONS)
        ]
        await conn.execute(
            "CREATE TEMP TABLE bench_stays (n int, checkin date, name bytea, idx text[])"
        )
        await conn.copy_records_to_table("bench_stays", records=rows)
        await conn.execute(
            """
            WITH h AS (
                INSERT INTO holds (property_id, status, checkin, checkout, guests, total_cents,
                                   currency, expires_at, create_idempotency_key,
                                   request_fingerprint, closed_at)
                SELECT $1, 'converted', checkin, checkin + 2, 2, 60000, 'BRL', now(),
                       'bench-' || n, 'bench', now()
                FROM bench_stays
                RETURNING id, create_idempotency_key AS key
            ), p AS (
                INSERT INTO payments (provider, provider_object_id, hold_id, status,
                                      amount_cents, currency)
                SELECT 'stripe', 'cs_bench_' || h.key, h.id, 'succeeded', 60000, 'BRL' FROM h
                RETURNING id, hold_id
            )
            INSERT INTO reservations (hold_id, payment_id, property_id, code, checkin,
                                      checkout, guests, total_cents, currency,
                                      guest_name_sealed, guest_name_index)
            SELECT h.id, p.id, $1, 'B' || lpad(s.n::text, 5, '0'), s.checkin, s.checkin + 2,
                   2, 60000, 'BRL', s.name, s.idx
            FROM h JOIN p ON p.hold_id = h.id
            JOIN bench_stays s ON 'bench-' || s.n = h.key
            """,
            prop,
        )
        await conn.execute("ANALYZE")
        return f"{auth.COOKIE}={await auth.open_session(conn, pii.contact_hash(STAFF))}"
    finally:
        await conn.close()


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _wrk(url: str, seconds: float, cookie: str) -> dict[str, float]:
    done = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{CLIENTS}",
            f"-d{seconds:g}s",
            "--latency",
            "-H",
            f"Cookie: {cookie}",
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    rps = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    p50 = re.search(r"\s50%\s+(\S+)", done.stdout)
    p99 = re.search(r"\s99%\s+(\S+)", done.stdout)
    if done.returncode != 0 or not (rps and p50 and p99) or "Non-2xx" in done.stdout:
        raise SystemExit(f"wrk failed on {url}: {done.stdout}{done.stderr}")
    return {"rps": float(rps.group(1)), "p50": _ms(p50.group(1)), "p99": _ms(p99.group(1))}


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("bench-console needs wrk (apt-get install -y wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="hotelly-bench-console-"))
    workdir.chmod(0o755)
    server = start_postgres(workdir / "pg", durable=True)
    try:
        url = server.url("bench")
        migrate(url)
        cookie = asyncio.run(_inn(url, dt.datetime.now(TZ).date()))
        port = free_port()
        public = _serve(url, port, workdir / "public.log", CONSOLE_PEPPER="bench-pepper")
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while subprocess.run(["curl", "-sf", f"{base}/health"], capture_output=True).returncode:
                if time.monotonic() > deadline or public.poll() is not None:
                    raise SystemExit("the public server did not start")
                time.sleep(0.1)
            pages = {
                "calendar": f"{base}/console/bench-inn/calendario?dias=90",
                "reservations": f"{base}/console/bench-inn/reservas",
                "search": f"{base}/console/bench-inn/reservas?q=joana",
                "health": f"{base}/health",
            }
            for name, page in pages.items():
                curl = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"]
                check = subprocess.run(
                    [*curl, "-H", f"Cookie: {cookie}", page],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                if check.stdout != "200":
                    raise SystemExit(f"{name} answered {check.stdout}")
                _wrk(page, 2, cookie)  # warm up
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in pages}
            for _ in range(ROUNDS):
                for name, page in pages.items():
                    runs[name].append(_wrk(page, SECONDS, cookie))
        finally:
            public.terminate()
            public.wait(timeout=15)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    result: dict[str, float] = {}
    for name, phases in runs.items():
        for key in ("p50", "p99", "rps"):
            suffix = "ms" if key != "rps" else ""
            result[f"{name}_{key}{'_' + suffix if suffix else ''}"] = round(
                statistics.median(p[key] for p in phases), 2
            )
    for name in ("calendar", "reservations", "search"):
        print(
            f"{name}: p50 {result[f'{name}_p50_ms']} ms, p99 {result[f'{name}_p99_ms']} ms"
            f" (target < 150), {result[f'{name}_rps']} req/s"
        )
    print(f"health: {result['health_rps']} req/s at {CLIENTS} clients")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
