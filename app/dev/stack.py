"""`make run`: the whole system on this machine, no Docker.

Starts a Postgres under .local/ unless DATABASE_URL is set, always migrates the
database it uses and imports docs/examples/property.json, then serves `public` on
127.0.0.1:$PUBLIC_PORT and `worker` on 127.0.0.1:$WORKER_PORT until Ctrl-C or
SIGTERM, and stops everything it started.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from app.dev.postgres import LocalPostgres, _die_with_parent, start_postgres
from app.logging import configure_logging

log = logging.getLogger("app.dev.stack")

LOCAL_DIR = Path(".local")
SAMPLE_PROPERTY = Path(__file__).resolve().parents[2] / "docs" / "examples" / "property.json"


def _spawn(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "app", *args], env=env, preexec_fn=_die_with_parent
    )


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


def run_stack() -> int:
    configure_logging("dev", os.environ.get("LOG_LEVEL", "INFO"))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    env = dict(os.environ)
    database: LocalPostgres | None = None
    children: list[subprocess.Popen[bytes]] = []
    try:
        if not env.get("DATABASE_URL"):
            LOCAL_DIR.mkdir(mode=0o755, exist_ok=True)
            LOCAL_DIR.chmod(0o755)  # the server runs unprivileged and must reach its datadir
            database = start_postgres(LOCAL_DIR / "pg", log_file=LOCAL_DIR / "postgres.log")
            env["DATABASE_URL"] = database.url("hotelly")
            log.info("local_postgres_started", extra={"port": database.port})
        for step in (["migrate"], ["property", "import", str(SAMPLE_PROPERTY)]):
            if subprocess.run([sys.executable, "-m", "app", *step], env=env).returncode != 0:
                log.error("stack_setup_failed", extra={"step": step[0]})
                return 1
        roles = (
            ("public", env.get("PUBLIC_PORT", "8080")),
            ("worker", env.get("WORKER_PORT", "8081")),
        )
        for role, port in roles:
            children.append(
                _spawn({**env, "ROLE": role, "PORT": port, "HOST": "127.0.0.1"}, "serve")
            )
        log.info("stack_up", extra={"ports": dict(roles)})
        while not stop.wait(0.5):
            if any(child.poll() is not None for child in children):
                log.error("stack_process_exited")
                return 1
        return 0
    finally:
        _stop_all(children)
        if database is not None:
            database.stop()
        log.info("stack_down")
