"""Helpers for tests: servers over real HTTP, subprocess environments, polling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from app import db
from app.dev.postgres import free_port
from app.http.app import create_app
from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


@contextlib.asynccontextmanager
async def connections(url: str, count: int) -> AsyncIterator[list[asyncpg.Connection]]:
    """``count`` separate connections to ``url``, all closed on the way out."""
    opened = await asyncio.gather(*(db.connect(url) for _ in range(count)), return_exceptions=True)
    conns = [c for c in opened if isinstance(c, asyncpg.Connection)]
    try:
        for result in opened:
            if isinstance(result, BaseException):
                raise result
        yield conns
    finally:
        await asyncio.gather(*(c.close() for c in conns))


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def eventually(
    check: Callable[[], Awaitable[T]], *, within: float = 10.0, interval: float = 0.02
) -> T:
    """Poll ``check`` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s (last: {result!r})")
        await asyncio.sleep(interval)


def wait_http(url: str, process: subprocess.Popen[str], timeout: float = 30.0) -> None:
    """Poll ``url`` until it answers, failing fast if ``process`` exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            if process.poll() is not None:
                raise AssertionError(f"process exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer within {timeout} s") from None
            time.sleep(0.02)


@contextlib.asynccontextmanager
async def serve_app(settings: Settings) -> AsyncIterator[str]:
    """Run create_app(settings) under hypercorn on settings.port (or a free one)."""
    port = settings.port or free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    stop = asyncio.Event()
    task = asyncio.create_task(
        hypercorn_serve(create_app(settings), config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
    )
    base = f"http://127.0.0.1:{port}"

    async def up() -> bool:
        if task.done():
            task.result()  # surface the start-up error
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{base}/health")).status_code == 200
        except httpx.TransportError:
            return False

    try:
        await eventually(up)
        yield base
    finally:
        stop.set()
        await task


# What `serve` needs besides the database, with local values (nothing is contacted
# at start-up: Cloud Tasks, certificates and Stripe are reached lazily).
SERVE_ENV = {
    "STRIPE_SECRET_KEY": "sk_test_x",
    "STRIPE_WEBHOOK_SECRET": "whsec_x",
    "TASKS_PROJECT": "p",
    "TASKS_LOCATION": "l",
    "TASKS_EMULATOR_HOST": "127.0.0.1:9",
    "WORKER_URL": "http://127.0.0.1:9",
    "TASKS_SERVICE_ACCOUNT": "tasks@p.iam.gserviceaccount.com",
    "OIDC_ALLOWED_EMAILS": "tasks@p.iam.gserviceaccount.com",
    "WHATSAPP_VERIFY_TOKEN": "verify-x",
    "WHATSAPP_APP_SECRET": "app-secret-x",
    "WHATSAPP_ACCESS_TOKEN": "graph-token-x",
    "PII_KEY": "aG90ZWxseS1sb2NhbC1waWkta2V5LTAxMjM0NTY3ODk=",
    "CONTACT_HASH_KEY": "aG90ZWxseS1sb2NhbC1jb250YWN0LWhhc2gta2V5LTA=",
}


def app_env(**values: str) -> dict[str, str]:
    """A clean environment for `python -m app` subprocesses: no inherited app config."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.update(values)
    return env


def run_cli(
    *args: str, env: dict[str, str], cwd: Path = ROOT, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class TcpProxy:
    """A loopback TCP proxy a test can cut and restore, to take a dependency 'down'."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def cut(self) -> None:
        """Stop accepting and drop every open connection."""
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    async def restore(self) -> None:
        """After cut(): listen again on the same port, so new connections go through."""
        assert self._server is not None and not self._server.is_serving()
        await self.start()
