"""A throwaway or local Postgres from Debian's binaries, without Docker.

initdb and postgres refuse to run as root, so as root the server runs as an
unprivileged user. The child gets PR_SET_PDEATHSIG so a killed parent never
leaves a server behind; ``stop`` is the clean path.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

_PR_SET_PDEATHSIG = 1
UNPRIVILEGED_USER = "nobody"


def bin_dir() -> Path:
    """Newest Debian PostgreSQL bin directory, or the one holding initdb on PATH."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError(
        "PostgreSQL binaries not found: apt-get install postgresql postgresql-contrib"
    )


# Ports for local servers are picked below the kernel's ephemeral range: a port taken from
# that range (bind to port 0) may be handed to some outgoing connection as its source port
# before the server binds it.
_LOCAL_PORTS = (10_000, 32_768)


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _LOCAL_PORTS[1]


def free_port() -> int:
    """A port nothing listens on now and no outgoing connection will be given."""
    high = min(_LOCAL_PORTS[1], _ephemeral_floor())
    while True:
        port = random.randrange(_LOCAL_PORTS[0], high)  # noqa: S311 (not a secret)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT)


def _as_user() -> dict[str, object]:
    if os.geteuid() != 0:
        return {}
    user = pwd.getpwnam(UNPRIVILEGED_USER)
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


@dataclass
class LocalPostgres:
    datadir: Path
    port: int
    process: subprocess.Popen[bytes]

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        """Fast shutdown: roll back open transactions, close sessions, exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_postgres(
    datadir: Path,
    *,
    port: int | None = None,
    max_connections: int = 100,
    durable: bool = True,
    log_file: Path | None = None,
) -> LocalPostgres:
    """Start a server on 127.0.0.1 with ``datadir``, running initdb first if it is new.

    ``durable=False`` turns fsync off: for test servers whose data is thrown away.
    """
    binaries = bin_dir()
    run_as = _as_user()
    datadir.mkdir(parents=True, exist_ok=True)
    if run_as:
        os.chown(datadir, run_as["user"], run_as["group"])  # type: ignore[arg-type]
        datadir.chmod(0o700)
    if not (datadir / "PG_VERSION").exists():
        initdb = subprocess.run(
            [
                str(binaries / "initdb"),
                "-D",
                str(datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            **run_as,  # type: ignore[call-overload]
        )
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed: {initdb.stderr.strip()}")
    port = port or free_port()
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": "",
        "max_connections": str(max_connections),
        "fsync": "on" if durable else "off",
        "synchronous_commit": "on" if durable else "off",
        "full_page_writes": "on" if durable else "off",
    }
    argv = [str(binaries / "postgres"), "-D", str(datadir)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    log_target = open(log_file or os.devnull, "ab")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        argv,
        stdout=log_target,
        stderr=log_target,
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
        start_new_session=True,
        **run_as,  # type: ignore[call-overload]
    )
    log_target.close()
    server = LocalPostgres(datadir=datadir, port=port, process=process)
    _wait_ready(server)
    return server


def _wait_ready(server: LocalPostgres, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"postgres exited with code {server.process.returncode}")
        with contextlib.suppress(psycopg.OperationalError):
            psycopg.connect(server.url(), connect_timeout=2).close()
            return
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError("postgres did not accept connections within 30 s")
        time.sleep(0.05)
