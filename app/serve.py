"""`serve`: hypercorn on uvloop for the configured role, one process."""

from __future__ import annotations

import asyncio
import logging
import signal

import uvloop
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from app.http.app import create_app
from app.settings import Settings

log = logging.getLogger("app.serve")

# Cloud Run gives a container 10 s between SIGTERM and SIGKILL.
GRACEFUL_TIMEOUT_SECONDS = 8


async def _serve(settings: Settings) -> None:
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.accesslog = None  # our middleware writes the one access line
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = GRACEFUL_TIMEOUT_SECONDS
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("serving", extra={"host": settings.host, "port": settings.port})
    await hypercorn_serve(create_app(settings), config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
    log.info("stopped")


def serve(settings: Settings) -> None:
    uvloop.run(_serve(settings))
