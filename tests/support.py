"""Helpers for tests: servers over real HTTP, subprocess environments, polling."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import orjson
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from app import db
from app.dev.postgres import free_port
from app.http.app import create_app
from app.inventory.holds import HoldRequest, Unit
from app.inventory.property_file import parse_property
from app.inventory.stay import Party, Stay
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


async def run_cli_async(env: dict[str, str], *args: str) -> tuple[int, list[str]]:
    """`python -m app …` without blocking the loop (a test serving an emulator on it): the
    exit code and stdout's lines; never a traceback."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert b"Traceback" not in out + err, err
    return process.returncode or 0, out.decode().strip().splitlines()


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


def hold_request(
    property_id: int,
    stay: Stay,
    rooms: Iterable[tuple[int, int]],
    idempotency_key: str,
    conversation_id: uuid.UUID | None = None,
) -> HoldRequest:
    """A hold of (room type id, units) pairs for the stay's guests, all adults: one in
    each unit, the rest in the first."""
    ids = [room_type_id for room_type_id, units in rooms for _ in range(units)]
    adults = [stay.guests - len(ids) + 1] + [1] * (len(ids) - 1)
    return HoldRequest(
        property_id=property_id,
        stay=stay,
        units=tuple(Unit(i, Party(n)) for i, n in zip(ids, adults, strict=True)),
        idempotency_key=idempotency_key,
        conversation_id=conversation_id,
    )


def rooms_of(request: HoldRequest) -> list[tuple[int, int]]:
    """(room type id, units) of a hold request, by room type."""
    return sorted(Counter(unit.room_type_id for unit in request.units).items())


SAMPLE_PROPERTY = ROOT / "docs" / "examples" / "property.json"
_STAY_RULES = {"min_stay", "max_stay", "closed_to_arrival", "closed_to_departure", "stop_sell"}


def sample_stay(nights: int, ahead: int = 20) -> tuple[dt.date, dt.date]:
    """(check-in, check-out) of a stay of ``nights`` at the sample inn, arriving ``ahead``
    days after today there, or the first day after that whose stay no season with stay
    rules touches: the dates a reader following the README would pick."""
    spec = parse_property(orjson.loads(SAMPLE_PROPERTY.read_bytes()))
    ruled = {
        season.start + dt.timedelta(days=i)
        for season in spec.seasons
        if any(_STAY_RULES & set(fields) for fields in season.room_types.values())
        for i in range((season.end - season.start).days + 1)
    }
    checkin = dt.datetime.now(ZoneInfo(spec.timezone)).date() + dt.timedelta(days=ahead)
    while any(checkin + dt.timedelta(days=i) in ruled for i in range(nights + 1)):
        checkin += dt.timedelta(days=1)
    return checkin, checkin + dt.timedelta(days=nights)
