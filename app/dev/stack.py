"""`make run`: the whole system on this machine, no Docker.

Starts a Postgres under .local/ unless DATABASE_URL is set, always migrates the
database it uses and imports docs/examples/property.json, starts the local Cloud
Tasks, the fake Stripe API, the fake WhatsApp Graph API and a fake Evolution gateway
(for docs/examples/property-evolution.json, imported too), then serves `public` on
127.0.0.1:$PUBLIC_PORT and `worker` on 127.0.0.1:$WORKER_PORT until Ctrl-C or SIGTERM,
and stops everything it started. It also plays Cloud Scheduler: every few seconds it
enqueues the hold sweep and the outbox relay through the same authenticated task path
production uses.

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

import orjson

from app.dev.postgres import LocalPostgres, _die_with_parent, start_postgres
from app.errors import Unavailable
from app.local import ROOT, database_url_file, local_dir, local_environment
from app.logging import configure_logging
from app.settings import load_settings
from app.tasks.queue import TaskQueue, queue_config

log = logging.getLogger("app.dev.stack")

SAMPLE_PROPERTY = ROOT / "docs" / "examples" / "property.json"
# A second inn, on an Evolution API gateway (a local fake at its api_base).
SAMPLE_EVOLUTION_PROPERTY = ROOT / "docs" / "examples" / "property-evolution.json"
# Production's scheduler runs every few minutes; locally, often enough to watch.
SCHEDULE_EVERY_SECONDS = 5


def _port(address: str) -> str:
    """The port of ``host:port`` or of a URL (``http://host:port/path``)."""
    return address.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[1]


def _spawn(env: dict[str, str], *argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *argv], env=env, preexec_fn=_die_with_parent)


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
        tick = int(time.time()) // SCHEDULE_EVERY_SECONDS
        for name, path in (("sweep", "/tasks/holds/sweep"), ("relay", "/tasks/outbox/relay")):
            try:
                await queue.enqueue("default", f"{name}-{tick}", path, {})
            except Unavailable:
                log.warning("scheduler_enqueue_failed", extra={"task_name": f"{name}-{tick}"})
        await asyncio.sleep(SCHEDULE_EVERY_SECONDS)


def _stop_all(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


async def _run(env: dict[str, str], children: list[subprocess.Popen[bytes]]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    tasks_port = _port(env["TASKS_EMULATOR_HOST"])
    evolution = orjson.loads(SAMPLE_EVOLUTION_PROPERTY.read_bytes())["whatsapp"]
    services = (  # (module, the port it serves, its arguments)
        ("tasks_emulator", tasks_port, ["--certs-port", _port(env["OIDC_CERTS_URL"])]),
        ("fake_stripe", _port(env["STRIPE_API_BASE"]), ["--api-key", env["STRIPE_SECRET_KEY"]]),
        (
            "fake_graph",
            _port(env["WHATSAPP_API_BASE"]),
            ["--access-token", env["WHATSAPP_ACCESS_TOKEN"]],
        ),
        (
            "fake_evolution",
            _port(evolution["api_base"]),
            ["--instance", evolution["instance"], "--api-key", evolution["api_key"]],
        ),
    )
    started = [
        _spawn(env, "-m", f"app.dev.{module}", "--port", port, *arguments)
        for module, port, arguments in services
    ]
    children += started
    for (_, port, _), child in zip(services, started, strict=True):
        await _wait_port(f"127.0.0.1:{port}", child)

    roles = (("public", env.get("PUBLIC_PORT", "8080")), ("worker", env.get("WORKER_PORT", "8081")))
    servers = [
        _spawn({**env, "ROLE": role, "PORT": port, "HOST": "127.0.0.1"}, "-m", "app", "serve")
        for role, port in roles
    ]
    children += servers
    for (_, port), server in zip(roles, servers, strict=True):
        await _wait_port(f"127.0.0.1:{port}", server)
    log.info("stack_up", extra={"ports": dict(roles)})

    queue = TaskQueue(queue_config(load_settings(env)))
    scheduler = asyncio.create_task(_play_scheduler(queue))
    try:
        while not stop.is_set():
            if any(child.poll() is not None for child in children):
                log.error("stack_process_exited")
                return 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
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
    children: list[subprocess.Popen[bytes]] = []
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
