"""Running an ASGI app under hypercorn inside the current event loop (local fakes, tests)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config


async def start_in_loop(
    app: Any, port: int, bind: str = "127.0.0.1"
) -> Callable[[], Awaitable[None]]:
    """Serve ``app`` on ``bind``:``port`` once it accepts connections; returns the
    coroutine function that stops it."""
    config = Config()
    config.bind = [f"{bind}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    stop = asyncio.Event()
    task = asyncio.create_task(hypercorn_serve(app, config, shutdown_trigger=stop.wait))
    deadline = time.monotonic() + 10
    while True:
        if task.done():
            task.result()  # surface the start-up error
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port}") from None
            await asyncio.sleep(0.01)

    async def shutdown() -> None:
        stop.set()
        await task

    return shutdown


async def run_until_signalled(
    start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]
) -> None:
    """For a fake's own process: start, wait for SIGINT/SIGTERM, stop."""
    import signal

    await start()
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()
    await stop()
