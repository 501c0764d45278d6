"""`make run`: the whole system on this machine, no Docker.

Starts a Postgres under .local/ unless DATABASE_URL is set, always migrates the
database it uses and imports docs/examples/property.json, starts the local Cloud
Tasks, the fake Stripe API, the fake WhatsApp Graph API, a fake Evolution gateway
(for docs/examples/property-evolution.json, imported too) and a fake channel serving the
sample inn's imported calendar (Airbnb-style iCal), then serves `public` on
127.0.0.1:$PUBLIC_PORT and `worker` on 127.0.0.1:$WORKER_PORT until Ctrl-C or SIGTERM,
and stops everything it started. A process that dies is started again after a short
backoff, as Cloud Run replaces an instance. It also plays Cloud Scheduler: every few
seconds it enqueues each scheduled task of the catalog (the hold sweep, the outbox relay,
the receipts' re-drive, the channel sync) through the same authenticated task path production uses.

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
from dataclasses import dataclass, field

import orjson

from app.dev.postgres import LocalPostgres, _die_with_parent, start_postgres
from app.errors import Unavailable
from app.local import ROOT, database_url_file, local_dir, local_environment
from app.logging import configure_logging
from app.settings import load_settings
from app.tasks.catalog import scheduled
from app.tasks.queue import TaskQueue, queue_config

log = logging.getLogger("app.dev.stack")

SAMPLE_PROPERTY = ROOT / "docs" / "examples" / "property.json"
# A second inn, on an Evolution API gateway (a local fake at its api_base).
SAMPLE_EVOLUTION_PROPERTY = ROOT / "docs" / "examples" / "property-evolution.json"
# The channel the sample inn's imported calendar comes from (a local fake at its URL).
SAMPLE_CHANNEL_PORT = "12114"
# Production's scheduler runs every few minutes; locally, often enough to watch.
SCHEDULE_EVERY_SECONDS = 5
# A process that dies is restarted after a backoff that doubles while it keeps dying
# (a crash loop must not spin), and starts again from the minimum once it has run a while.
RESTART_BACKOFF_SECONDS = (0.5, 10.0)
STABLE_SECONDS = 30.0


def _port(address: str) -> str:
    """The port of ``host:port`` or of a URL (``http://host:port/path``)."""
    return address.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[1]


@dataclass
class Child:
    """One process of the stack, kept running."""

    name: str
    argv: list[str]
    env: dict[str, str]
    port: str
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


async def _wait_port(host_port: str, process: subprocess.Popen[bytes]) -> None:
    host, port = host_port.rsplit(":", 1)
    deadline = time.monotonic() + 30
    while True:
        try:
            _, writer = await asyncio.open_connection(host, int(port))
            writer.close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {host_port}") from None
            await asyncio.sleep(0.05)


async def _play_scheduler(queue: TaskQueue) -> None:
    while True:
        tick = str(int(time.time()) // SCHEDULE_EVERY_SECONDS)
        for kind in scheduled():
            try:
                await queue.enqueue(kind, kind.task_name(tick), {})
            except Unavailable:
                log.warning("scheduler_enqueue_failed", extra={"task_name": kind.task_name(tick)})
        await asyncio.sleep(SCHEDULE_EVERY_SECONDS)


def _stop_all(children: list[Child]) -> None:
    processes = [child.process for child in children if child.process is not None]
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
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

    tasks_port = _port(env["TASKS_EMULATOR_HOST"])
    evolution = orjson.loads(SAMPLE_EVOLUTION_PROPERTY.read_bytes())["whatsapp"]
    services: tuple[tuple[str, str, list[str]], ...] = (  # (module, its port, its arguments)
        (
            "tasks_emulator",
            tasks_port,
            [
                "--certs-port",
                _port(env["OIDC_CERTS_URL"]),
                # A restarted emulator keeps signing with the key the worker already trusts.
                "--key-file",
                str(local_dir() / "tasks-signing-key.pem"),
            ],
        ),
        ("fake_stripe", _port(env["STRIPE_API_BASE"]), ["--api-key", env["STRIPE_SECRET_KEY"]]),
        (
            "fake_graph",
            _port(env["WHATSAPP_API_BASE"]),
            [
                "--access-token",
                env["WHATSAPP_ACCESS_TOKEN"],
                # Statuses of what it sends come back to the public webhook, as Meta's do.
                "--webhook-url",
                f"{env['PUBLIC_URL'].rstrip('/')}/webhooks/whatsapp/meta",
                "--app-secret",
                env["WHATSAPP_APP_SECRET"],
            ],
        ),
        ("fake_channel", SAMPLE_CHANNEL_PORT, []),
        (
            "fake_evolution",
            _port(evolution["api_base"]),
            ["--instance", evolution["instance"], "--api-key", evolution["api_key"]],
        ),
    )
    roles = (("public", env.get("PUBLIC_PORT", "8080")), ("worker", env.get("WORKER_PORT", "8081")))
    # The fakes first, then the two roles that talk to them.
    for group in (
        [
            Child(module, ["-m", f"app.dev.{module}", "--port", port, *arguments], env, port)
            for module, port, arguments in services
        ],
        [
            Child(
                role,
                ["-m", "app", "serve"],
                {**env, "ROLE": role, "PORT": port, "HOST": "127.0.0.1"},
                port,
            )
            for role, port in roles
        ],
    ):
        children += group
        for child in group:
            child.start()
        for child in group:
            assert child.process is not None
            await _wait_port(f"127.0.0.1:{child.port}", child.process)
    log.info("stack_up", extra={"ports": dict(roles)})

    queue = TaskQueue(queue_config(load_settings(env)))
    scheduler = asyncio.create_task(_play_scheduler(queue))
    try:
        while not stop.is_set():
            now = time.monotonic()
            for child in children:
                child.watch(now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)
        return 0
    finally:
        scheduler.cancel()
        await asyncio.gather(scheduler, return_exceptions=True)
        await queue.close()


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
        for step in (
            ["migrate"],
            ["property", "import", str(SAMPLE_PROPERTY)],
            ["property", "import", str(SAMPLE_EVOLUTION_PROPERTY)],
        ):
            if subprocess.run([sys.executable, "-m", "app", *step], env=env).returncode != 0:
                log.error("stack_setup_failed", extra={"step": step[0]})
                return 1
        return asyncio.run(_run(env, children))
    finally:
        _stop_all(children)
        if database is not None:
            database.stop()
        database_url_file().unlink(missing_ok=True)
        log.info("stack_down")
