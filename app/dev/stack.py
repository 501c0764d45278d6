"""`make run`: the whole system on this machine, no Docker.

Starts a Postgres under .local/ unless DATABASE_URL is set, then runs the setup steps
(``SETUP``: migrate, import docs/examples/property.json and property-evolution.json) and
keeps the processes of ``processes()`` running: the local Cloud Tasks, the fake Stripe API,
the fake WhatsApp Graph API, a fake Evolution gateway (the second sample inn's) and a fake
channel serving the sample inn's imported calendar (Airbnb-style iCal), then `public` on
127.0.0.1:$PUBLIC_PORT and `worker` on 127.0.0.1:$WORKER_PORT, then the local Cloud
Scheduler (app/dev/scheduler.py), until Ctrl-C or SIGTERM; it stops everything it started.
A process that dies is started again after a short backoff, as Cloud Run replaces an
instance. deploy/compose.yaml runs the same steps and processes (a test compares them).

Every other variable defaults to its value in .env.example; the environment wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.dev.postgres import LocalPostgres, _die_with_parent, start_postgres
from app.local import ROOT, database_url_file, local_dir, local_environment
from app.logging import configure_logging

log = logging.getLogger("app.dev.stack")

SAMPLE_PROPERTY = "docs/examples/property.json"
# A second inn, on an Evolution API gateway (a local fake at its api_base).
SAMPLE_EVOLUTION_PROPERTY = "docs/examples/property-evolution.json"
# One-shot steps before any process starts, in this order: python's arguments, run from the
# repository's root (compose runs them from the image's working directory).
SETUP: dict[str, tuple[str, ...]] = {
    "migrate": ("-m", "app", "migrate"),
    "import_property": ("-m", "app", "property", "import", SAMPLE_PROPERTY),
    "import_property_evolution": ("-m", "app", "property", "import", SAMPLE_EVOLUTION_PROPERTY),
}
# A process that dies is restarted after a backoff that doubles while it keeps dying
# (a crash loop must not spin), and starts again from the minimum once it has run a while.
RESTART_BACKOFF_SECONDS = (0.5, 10.0)
STABLE_SECONDS = 30.0


@dataclass(frozen=True)
class Process:
    """A process the stack keeps running: python's arguments, the port it listens on (None:
    it serves nothing), its variables over the stack's, and the processes that must listen
    before it starts (earlier ones in the table)."""

    name: str
    argv: tuple[str, ...]
    port: str | None
    env: Mapping[str, str] = field(default_factory=dict)
    needs: tuple[str, ...] = ()


def _port(address: str) -> str:
    """The port of ``host:port`` or of a URL (``http://host:port/path``)."""
    return address.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[1]


def _sample(path: str) -> Any:
    return orjson.loads((ROOT / path).read_bytes())


def _channel_port() -> str:
    """The fake channel's port: the one the sample inn's imported calendars are at (one
    fake serves every calendar by name)."""
    (port,) = {
        _port(calendar["import_url"])
        for room_type in _sample(SAMPLE_PROPERTY)["room_types"]
        for calendar in room_type.get("calendars", [])
        if "import_url" in calendar
    }
    return port


def _fake(name: str, port: str, *arguments: str) -> Process:
    return Process(name, ("-m", f"app.dev.{name}", "--port", port, *arguments), port)


def processes(env: Mapping[str, str], key_file: str) -> tuple[Process, ...]:
    """What `make run` keeps running, in start order, given its environment: each fake at
    the address that environment (or the sample files) points the app at, the two roles,
    the scheduler. ``key_file`` is where the local Cloud Tasks keeps its signing key."""
    evolution = _sample(SAMPLE_EVOLUTION_PROPERTY)["whatsapp"]
    fakes = (
        _fake(
            "tasks_emulator",
            _port(env["TASKS_EMULATOR_HOST"]),
            "--certs-port",
            _port(env["OIDC_CERTS_URL"]),
            # A restarted emulator keeps signing with the key the worker already trusts.
            "--key-file",
            key_file,
        ),
        _fake("fake_stripe", _port(env["STRIPE_API_BASE"]), "--api-key", env["STRIPE_SECRET_KEY"]),
        _fake(
            "fake_graph",
            _port(env["WHATSAPP_API_BASE"]),
            "--access-token",
            env["WHATSAPP_ACCESS_TOKEN"],
            # Statuses of what it sends come back to the public webhook, as Meta's do.
            "--webhook-url",
            f"{env['PUBLIC_URL'].rstrip('/')}/webhooks/whatsapp/meta",
            "--app-secret",
            env["WHATSAPP_APP_SECRET"],
        ),
        _fake("fake_channel", _channel_port()),
        _fake("fake_model", _port(env["UNDERSTANDING_BASE_URL"])),
        _fake(
            "fake_evolution",
            _port(evolution["api_base"]),
            "--instance",
            evolution["instance"],
            "--api-key",
            evolution["api_key"],
        ),
    )
    # The roles talk to the fakes, so they start once the fakes listen.
    roles = tuple(
        Process(
            role,
            ("-m", "app", "serve"),
            port,
            {"ROLE": role, "PORT": port, "HOST": "127.0.0.1"},
            tuple(fake.name for fake in fakes),
        )
        for role, port in (
            ("public", env.get("PUBLIC_PORT", "8080")),
            ("worker", env.get("WORKER_PORT", "8081")),
        )
    )
    # Its tasks go through the local Cloud Tasks to the worker.
    scheduler = Process(
        "scheduler", ("-m", "app.dev.scheduler"), None, {}, ("tasks_emulator", "worker")
    )
    return (*fakes, *roles, scheduler)


@dataclass
class Child:
    """One process of the stack, kept running."""

    name: str
    argv: list[str]
    env: dict[str, str]
    port: str | None
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    backoff: float = RESTART_BACKOFF_SECONDS[0]
    restart_at: float | None = field(default=None, repr=False)

    def start(self) -> subprocess.Popen[bytes]:
        self.process = subprocess.Popen(
            [sys.executable, *self.argv], env=self.env, preexec_fn=_die_with_parent
        )
        self.started_at, self.restart_at = time.monotonic(), None
        log.info("stack_process_started", extra={"child": self.name, "pid": self.process.pid})
        return self.process

    def watch(self, now: float) -> None:
        """Restart the process if it died: one log line when it is found dead, then
        started again after the backoff."""
        assert self.process is not None
        code = self.process.poll()
        if code is None:
            return
        if self.restart_at is None:
            low, high = RESTART_BACKOFF_SECONDS
            stable = now - self.started_at > STABLE_SECONDS
            self.backoff = low if stable else min(self.backoff * 2, high)
            self.restart_at = now + self.backoff
            log.warning(
                "stack_process_restarting",
                extra={"child": self.name, "exit_code": code, "in_seconds": self.backoff},
            )
        elif now >= self.restart_at:
            self.start()

    async def listening(self) -> None:
        """Return once the process accepts connections on its port (at once without one)."""
        assert self.process is not None
        if self.port is None:
            return
        deadline = time.monotonic() + 30
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", int(self.port))
                writer.close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nothing listens on 127.0.0.1:{self.port}") from None
                await asyncio.sleep(0.05)


async def _start(table: tuple[Process, ...], env: dict[str, str], children: list[Child]) -> None:
    """Start the table in order, a process once those it needs listen: the ones that need
    nothing started since start together."""
    waiting: list[Child] = []
    for process in table:
        if not set(process.needs) <= {child.name for child in children if child not in waiting}:
            for child in waiting:
                await child.listening()
            waiting = []
        child = Child(process.name, list(process.argv), {**env, **process.env}, process.port)
        child.start()
        children.append(child)
        waiting.append(child)
    for child in waiting:
        await child.listening()


def _stop_all(children: list[Child]) -> None:
    running = [child.process for child in children if child.process is not None]
    for process in running:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in running:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _run(env: dict[str, str], children: list[Child]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    table = processes(env, str(local_dir() / "tasks-signing-key.pem"))
    await _start(table, env, children)
    roles = ("public", "worker")
    log.info("stack_up", extra={"ports": {p.name: p.port for p in table if p.name in roles}})
    while not stop.is_set():
        now = time.monotonic()
        for child in children:
            child.watch(now)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)
    return 0


def run_stack() -> int:
    env = {k: v for k, v in local_environment().items() if k != "DATABASE_URL"}
    if os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    configure_logging("dev", env.get("LOG_LEVEL", "INFO"))
    database: LocalPostgres | None = None
    children: list[Child] = []
    try:
        here = local_dir()
        here.mkdir(mode=0o755, parents=True, exist_ok=True)
        if not env.get("DATABASE_URL"):
            here.chmod(0o755)  # the server runs unprivileged and must reach its datadir
            database = start_postgres(here / "pg", log_file=here / "postgres.log")
            env["DATABASE_URL"] = database.url("hotelly")
            log.info("local_postgres_started", extra={"port": database.port})
        # Commands in another terminal find this database without configuration.
        database_url_file().write_text(env["DATABASE_URL"] + "\n")
        for step, argv in SETUP.items():
            if subprocess.run([sys.executable, *argv], env=env, cwd=ROOT).returncode != 0:
                log.error("stack_setup_failed", extra={"step": step})
                return 1
        return asyncio.run(_run(env, children))
    finally:
        _stop_all(children)
        if database is not None:
            database.stop()
        database_url_file().unlink(missing_ok=True)
        log.info("stack_down")
