"""Stripe webhook ingress against its floor: ``make bench-ingress``.

What is measured: ``POST /webhooks/stripe`` exactly as production serves it, every
request a distinct, freshly signed ``checkout.session.completed`` event (signature check,
JSON parse, the receipt INSERT, the Cloud Tasks CreateTask, the UPDATE marking the
receipt enqueued, the access line). Against it, on the same server in the same run:

* floor: ``POST /bench/floor/<event id>``, the same receipt INSERT (``insert_receipt``)
  and the same ``TaskQueue.enqueue`` (queue, name scheme, path and body as the webhook's)
  and nothing else: no verification, parsing, UPDATE or logging. It is sent the same
  bytes as the webhook (body and headers), with its own distinct event id in the path;
* trivial: ``GET /bench/trivial``, a fixed JSON answer: the ceiling of this server.

ratio_floor = webhook/floor is the share of the floor's throughput the webhook keeps (what
its verification, parsing, UPDATE and logging cost); ratio_trivial = webhook/trivial the
share of what this server answers when it does nothing.

The server (``bench.ingress_services app``, its own process) is the public role as
``python -m app serve`` runs it: ``create_app(settings)`` on hypercorn and uvloop, one
process, DB_POOL_MAX=10 (the default) and LOG_LEVEL=INFO. Its stdout, the JSON log with
one access line per webhook, goes to a file in the run's temp directory (written and
flushed per line as on Cloud Run, removed at the end). The floor and trivial endpoints are
dispatched ahead of the app's middleware, so they write no line. Postgres is a throwaway
server with Debian's durable defaults (fsync, synchronous_commit on), as bench-holds.

Cloud Tasks is the local emulator, in its own process (``bench.ingress_services tasks``),
with ``max_attempts=0``: CreateTask validates, dedupes by name and stores the task, but
nothing is ever delivered and WORKER_URL points at a port where nothing listens. Even
with a long backoff, the emulator's first delivery attempt of each task costs it ~1 ms
of CPU (an RS256 OIDC token, then the connection attempt), which at these rates would
take most of a core from the server on a 2-core machine. (The app enqueues with
``schedule_at=None``, so scheduling the tasks far ahead is not an option.)

Load: wrk (C, one thread, 64 connections, 10 s timeout) with a Lua script that replays
raw requests pre-built by this module, each sent once. On a machine with two cores the
client competes with the server, Postgres and the emulator: wrk takes a few percent of a
core at the webhook's rate (about 15% at the trivial endpoint's), where a Python client
would spend tens to hundreds of microseconds per request in the interpreter. wrk must be
installed (``apt-get install -y wrk``; ``make bench-ingress`` does it).
Events are built and signed just before each phase (signatures are valid for 300 s), in
a number sized from the rates seen so far; a phase that would run out fails rather than
repeat an id. After each webhook and floor phase, the count of new receipts must cover
every answered request (a repeated id would not make one).

Phases alternate webhook, floor, trivial three times after a short warm-up of each, and
the medians are reported: req/s, and the median over the phases of wrk's per-phase p50
and p99 (closed loop, so latency is mostly queueing behind 64 clients). A CHECKPOINT
before each phase starts it from clean buffers. processed_events grows with every webhook
and floor request (tens of thousands of rows), so its indexes grow between phases;
alternating spreads that drift over both sides.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg
import stripe

from app.dev.postgres import LocalPostgres, free_port, start_postgres
from app.migrate import migrate
from app.payments.stripe_events import TOLERANCE_SECONDS
from bench.ingress_services import EVENT_TYPE, FLOOR_PREFIX, TRIVIAL_PATH

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 3
WARMUP_SECONDS = 2.0
CLIENTS = 64
WRK_THREADS = 1
WRK_TIMEOUT = "10s"
POOL_MAX = 10
MAX_CONNECTIONS = 100
ENDPOINTS = ("webhook", "floor", "trivial")
# Requests built per phase: seconds x this many per second at least, or 3x the best rate
# seen so far for that endpoint; the warm-up gets WARMUP_RPS per second.
MIN_CAPACITY_RPS = 3_000
WARMUP_RPS = 8_000
HEADROOM = 3
WEBHOOK_SECRET = "whsec_bench_ingress"  # noqa: S105 - a throwaway signing key
SERVICE_ACCOUNT = "tasks@hotelly-bench.iam.gserviceaccount.com"
_PR_SET_PDEATHSIG = 1

# Replays a file of length-prefixed raw requests ("<bytes>\n<request>"), one each, in
# order; without a file, wrk's own request for the URL. Past the end it sends a request
# the server answers 404, which the bench reports as running out.
LUA_SCRIPT = r"""
local requests = {}
local count = 0
local sent = 0
local exhausted = "GET /bench/exhausted HTTP/1.1\r\nHost: bench\r\n\r\n"

function init(args)
  if args[1] == nil then
    return
  end
  local file = assert(io.open(args[1], "rb"))
  local data = file:read("*a")
  file:close()
  local pos = 1
  while pos <= #data do
    local newline = string.find(data, "\n", pos, true)
    local length = tonumber(string.sub(data, pos, newline - 1))
    count = count + 1
    requests[count] = string.sub(data, newline + 1, newline + length)
    pos = newline + 1 + length
  end
  request = function()
    sent = sent + 1
    if sent > count then
      return exhausted
    end
    return requests[sent]
  end
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\"requests\": %d, \"duration_us\": %d, \"connect\": %d, \"read\": %d, " ..
    "\"write\": %d, \"status\": %d, \"timeout\": %d, \"p50_us\": %.1f, \"p99_us\": %.1f}\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


class BenchError(Exception):
    """The run cannot give a meaningful figure."""


@dataclass(frozen=True)
class Phase:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int


@dataclass(frozen=True)
class Result:
    rps: float  # medians over the phases
    p50_ms: float
    p99_ms: float


@dataclass
class Stack:
    public_url: str
    db: psycopg.Connection[tuple[Any, ...]]
    log_file: Path
    workdir: Path
    _next_event: int = 0

    def events(self, endpoint: str, count: int) -> Path:
        """``count`` raw requests to ``endpoint``, each with a new event, signed now."""
        assert endpoint in ("webhook", "floor")
        host = self.public_url.removeprefix("http://")
        timestamp = int(time.time())
        chunks: list[bytes] = []
        for _ in range(count):
            self._next_event += 1
            event_id = f"evt_1Bench{self._next_event:018d}"
            payload = _event(event_id, timestamp)
            signature = stripe.WebhookSignature.generate_signature_header(
                payload.decode(), WEBHOOK_SECRET, timestamp=timestamp
            )
            target = "/webhooks/stripe" if endpoint == "webhook" else FLOOR_PREFIX + event_id
            request = (
                f"POST {target} HTTP/1.1\r\n"
                f"Host: {host}\r\n"
                "Content-Type: application/json\r\n"
                f"Stripe-Signature: {signature}\r\n"
                f"Content-Length: {len(payload)}\r\n"
                "\r\n"
            ).encode() + payload
            chunks.append(b"%d\n%b" % (len(request), request))
        path = self.workdir / f"{endpoint}.requests"
        path.write_bytes(b"".join(chunks))
        return path

    def receipts(self) -> int:
        row = self.db.execute("SELECT count(*) FROM processed_events").fetchone()
        assert row is not None
        return int(row[0])

    def checkpoint(self) -> None:
        self.db.execute("CHECKPOINT")

    def access_lines(self) -> dict[str, int]:
        """Access lines in the server's log, by path."""
        counts: dict[str, int] = {}
        with self.log_file.open("rb") as log:
            for line in log:
                if b'"http_request"' in line:
                    path = str(orjson.loads(line).get("path"))
                    counts[path] = counts.get(path, 0) + 1
        return counts


def _event(event_id: str, created: int) -> bytes:
    """A minimal checkout.session.completed event as Stripe would send it."""
    return orjson.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2026-10-28",
            "created": created,
            "livemode": False,
            "type": EVENT_TYPE,
            "data": {
                "object": {
                    "id": "cs_test_" + event_id.removeprefix("evt_"),
                    "object": "checkout.session",
                    "payment_status": "paid",
                    "amount_total": 35_000,
                    "currency": "brl",
                    "metadata": {"hold_id": str(uuid.uuid4())},
                }
            },
        }
    )


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@contextlib.contextmanager
def _process(
    argv: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child in its own session (Ctrl-C reaches only us), dying with us, stopped on exit."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_until(
    ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str, log: Path
) -> None:
    deadline = time.monotonic() + 30
    while not ready():
        if process.poll() is not None:
            raise BenchError(f"{what} exited with code {process.returncode}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise BenchError(f"{what} did not start within 30 s:\n{_tail(log)}")
        time.sleep(0.05)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _health(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@contextlib.contextmanager
def _stack(workdir: Path) -> Iterator[Stack]:
    with contextlib.ExitStack() as stack:
        server: LocalPostgres = start_postgres(
            workdir / "pg", max_connections=MAX_CONNECTIONS, durable=True
        )
        stack.callback(server.stop)
        url = server.url("bench")
        migrate(url)
        grpc_port, certs_port, app_port = free_port(), free_port(), free_port()
        tasks_log = workdir / "tasks.log"
        tasks = stack.enter_context(
            _process(
                [
                    sys.executable,
                    "-m",
                    "bench.ingress_services",
                    "tasks",
                    "--port",
                    str(grpc_port),
                    "--certs-port",
                    str(certs_port),
                ],
                tasks_log,
            )
        )
        _wait_until(lambda: _port_open(grpc_port), tasks, "the Cloud Tasks emulator", tasks_log)
        worker_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "ROLE": "public",
            "HOST": "127.0.0.1",
            "PORT": str(app_port),
            "DB_POOL_MAX": str(POOL_MAX),
            "LOG_LEVEL": "INFO",
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "TASKS_PROJECT": "hotelly-bench",
            "TASKS_LOCATION": "southamerica-east1",
            "TASKS_EMULATOR_HOST": f"127.0.0.1:{grpc_port}",
            "WORKER_URL": worker_url,
            "OIDC_AUDIENCE": worker_url,
            "TASKS_SERVICE_ACCOUNT": SERVICE_ACCOUNT,
            "WHATSAPP_VERIFY_TOKEN": "bench-verify-token",
            "WHATSAPP_APP_SECRET": "bench-app-secret",
            "PII_KEY": "aG90ZWxseS1sb2NhbC1waWkta2V5LTAxMjM0NTY3ODk=",
            "CONTACT_HASH_KEY": "aG90ZWxseS1sb2NhbC1jb250YWN0LWhhc2gta2V5LTA=",
        }
        log_file = workdir / "public.log"
        app = stack.enter_context(
            _process([sys.executable, "-m", "bench.ingress_services", "app"], log_file, env)
        )
        _wait_until(lambda: _health(app_port), app, "the public server", log_file)
        db = stack.enter_context(psycopg.connect(url, autocommit=True))
        yield Stack(f"http://127.0.0.1:{app_port}", db, log_file, workdir)


def _wrk(stack: Stack, path: str, seconds: float, requests: Path | None) -> Phase:
    script = stack.workdir / "replay.lua"
    if not script.exists():
        script.write_text(LUA_SCRIPT)
    argv = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{CLIENTS}",
        f"-d{seconds:g}s",
        f"--timeout={WRK_TIMEOUT}",
        "-s",
        str(script),
        stack.public_url + path,
    ]
    if requests is not None:
        argv += ["--", str(requests)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH_JSON ")]
    if done.returncode != 0 or not lines:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    stats = json.loads(lines[-1].removeprefix("BENCH_JSON "))
    errors = {k: stats[k] for k in ("connect", "read", "write", "status", "timeout") if stats[k]}
    if errors:
        hint = " (ran out of pre-built requests?)" if "status" in errors else ""
        raise BenchError(f"{path}: wrk saw errors {errors}{hint}")
    if not stats["requests"]:
        raise BenchError(f"{path}: no request answered")
    return Phase(
        rps=stats["requests"] / (stats["duration_us"] / 1e6),
        p50_ms=stats["p50_us"] / 1000,
        p99_ms=stats["p99_us"] / 1000,
        requests=stats["requests"],
    )


def _phase(stack: Stack, endpoint: str, seconds: float, capacity_rps: float) -> Phase:
    if endpoint == "trivial":
        return _wrk(stack, TRIVIAL_PATH, seconds, None)
    requests = stack.events(endpoint, int(seconds * capacity_rps) + CLIENTS)
    before = stack.receipts()
    path = "/webhooks/stripe" if endpoint == "webhook" else FLOOR_PREFIX
    phase = _wrk(stack, path, seconds, requests)
    created = stack.receipts() - before
    if created < phase.requests:
        raise BenchError(
            f"{endpoint}: {phase.requests} answers but {created} new receipts (repeated ids?)"
        )
    return phase


def _bench(stack: Stack, seconds: float) -> dict[str, Result]:
    best: dict[str, float] = {}
    for endpoint in ENDPOINTS:  # pool connections, prepared statements, warm buffers
        phase = _phase(stack, endpoint, WARMUP_SECONDS, WARMUP_RPS)
        best[endpoint] = phase.rps
    phases: dict[str, list[Phase]] = {endpoint: [] for endpoint in ENDPOINTS}
    for round_ in range(1, ROUNDS + 1):
        for endpoint in ENDPOINTS:
            stack.checkpoint()
            capacity = max(MIN_CAPACITY_RPS, HEADROOM * best[endpoint])
            phase = _phase(stack, endpoint, seconds, capacity)
            best[endpoint] = max(best[endpoint], phase.rps)
            phases[endpoint].append(phase)
            print(
                f"{endpoint} {round_}/{ROUNDS}: {phase.rps:,.0f} req/s,"
                f" p50 {phase.p50_ms:.1f} ms, p99 {phase.p99_ms:.1f} ms",
                file=sys.stderr,
                flush=True,
            )
    lines = stack.access_lines()
    print(f"server access lines by path: {lines}", file=sys.stderr, flush=True)
    return {
        endpoint: Result(
            rps=statistics.median(p.rps for p in runs),
            p50_ms=statistics.median(p.p50_ms for p in runs),
            p99_ms=statistics.median(p.p99_ms for p in runs),
        )
        for endpoint, runs in phases.items()
    }


def _report(results: dict[str, Result], seconds: float) -> None:
    webhook, floor, trivial = (results[endpoint] for endpoint in ENDPOINTS)
    print(f"{'endpoint':<8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, r in results.items():
        print(f"{name:<8} {r.rps:>8,.0f} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f}")
    ratio_floor = webhook.rps / floor.rps
    ratio_trivial = webhook.rps / trivial.rps
    print(f"ratio_floor {ratio_floor:.2f}  ratio_trivial {ratio_trivial:.2f}")
    summary: dict[str, object] = {
        name: {"rps": round(r.rps, 1), "p50_ms": round(r.p50_ms, 2), "p99_ms": round(r.p99_ms, 2)}
        for name, r in results.items()
    }
    summary["ratio_floor"] = round(ratio_floor, 3)
    summary["ratio_trivial"] = round(ratio_trivial, 3)
    summary["seconds"] = seconds
    summary["clients"] = CLIENTS
    print(json.dumps(summary), flush=True)


def main() -> int:
    seconds = float(os.environ.get("BENCH_SECONDS", "10"))
    if not 0 < seconds <= TOLERANCE_SECONDS - 60:
        print(
            f"bench-ingress: BENCH_SECONDS must be in (0, {TOLERANCE_SECONDS - 60}]: events are"
            f" signed before their phase and Stripe signatures last {TOLERANCE_SECONDS} s",
            file=sys.stderr,
        )
        return 2
    if shutil.which("wrk") is None:
        print(
            "bench-ingress: wrk is not installed; it is the load generator."
            " Install it with: apt-get install -y wrk",
            file=sys.stderr,
        )
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="hotelly-bench-ingress-"))
    try:
        workdir.chmod(0o755)  # the server runs unprivileged when we are root and must reach it
        with _stack(workdir) as stack:
            try:
                results = _bench(stack, seconds)
            except BenchError:
                print(f"server log, last lines:\n{_tail(stack.log_file)}", file=sys.stderr)
                raise
    except BenchError as exc:
        print(f"bench-ingress: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    _report(results, seconds)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
