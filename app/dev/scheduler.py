"""Cloud Scheduler, played locally: every few seconds it enqueues each scheduled task of the
catalog (the hold sweep, the outbox relay, the receipts' re-drive, the channel sync, and
whatever else the catalog schedules) through the local Cloud Tasks, so the worker gets them
the way production delivers them: one task name per tick, an OIDC token on each.

Its own process, `python -m app.dev.scheduler`, so that `make run` and compose run the same
program. It reads the environment as the dev commands do (.env.example's values, the real
environment on top) and stops on SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time

from app.errors import Unavailable
from app.local import local_environment
from app.logging import configure_logging
from app.settings import ConfigError, Settings, load_settings
from app.tasks.catalog import scheduled
from app.tasks.queue import TaskQueue, queue_config

log = logging.getLogger("app.dev.scheduler")

# Production's scheduler runs every few minutes; locally, often enough to watch.
SCHEDULE_EVERY_SECONDS = 5


async def enqueue_tick(queue: TaskQueue, tick: str) -> None:
    """Enqueue every scheduled kind under this tick's name; a kind that cannot be enqueued
    is logged and left to the next tick (the others still go)."""
    for kind in scheduled():
        name = kind.task_name(tick)
        try:
            await queue.enqueue(kind, name, {})
        except Unavailable:
            log.warning("scheduler_enqueue_failed", extra={"task_name": name})


async def play(queue: TaskQueue, stop: asyncio.Event) -> None:
    """Tick until ``stop`` is set. The tick is the wall clock's period number, so a tick
    enqueued twice (a restart within one period) names the same tasks: a no-op."""
    while not stop.is_set():
        await enqueue_tick(queue, str(int(time.time()) // SCHEDULE_EVERY_SECONDS))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SCHEDULE_EVERY_SECONDS)


async def _run(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    queue = TaskQueue(queue_config(settings))
    log.info(
        "scheduler_started",
        extra={
            "paths": [kind.path for kind in scheduled()],
            "every_seconds": SCHEDULE_EVERY_SECONDS,
        },
    )
    try:
        await play(queue, stop)
    finally:
        await queue.close()


def main() -> None:
    try:
        settings = load_settings(local_environment())
    except ConfigError as exc:
        raise SystemExit(f"scheduler: configuration error: {exc}") from None
    configure_logging("scheduler", settings.log_level)
    asyncio.run(_run(settings))


if __name__ == "__main__":
    main()
