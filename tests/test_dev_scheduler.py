"""make run's (and compose's) Cloud Scheduler, app/dev/scheduler.py: every tick enqueues
each scheduled kind the task catalog declares, named for the tick, and stops when told."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from app.dev.scheduler import enqueue_tick, play
from app.errors import Unavailable
from app.tasks.catalog import HOLDS_SWEEP, TaskKind, scheduled


class RecordingQueue:
    """Records enqueues; refuses the kinds in ``refuse``, as an unreachable queue would."""

    def __init__(self, refuse: tuple[TaskKind, ...] = ()) -> None:
        self.enqueued: list[tuple[TaskKind, str, dict[str, Any]]] = []
        self.refuse = refuse
        self.called = asyncio.Event()

    async def enqueue(self, kind: TaskKind, name: str, body: dict[str, Any]) -> bool:
        self.called.set()
        if kind in self.refuse:
            raise Unavailable("cannot enqueue task: ServiceUnavailable")
        self.enqueued.append((kind, name, body))
        return True


async def test_a_tick_enqueues_every_scheduled_kind_of_the_catalog_named_for_it() -> None:
    """One tick: one task per kind the catalog schedules (none other), each named by its
    kind for that tick, with an empty body."""
    queue = RecordingQueue()
    await enqueue_tick(queue, "123")  # type: ignore[arg-type]
    assert queue.enqueued == [(kind, kind.task_name("123"), {}) for kind in scheduled()]


async def test_a_kind_that_cannot_be_enqueued_is_logged_and_the_others_still_go(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The queue refuses the sweep: one `scheduler_enqueue_failed` line names its task, and
    every other scheduled kind is enqueued in the same tick."""
    queue = RecordingQueue(refuse=(HOLDS_SWEEP,))
    with caplog.at_level(logging.WARNING, logger="app.dev.scheduler"):
        await enqueue_tick(queue, "7")  # type: ignore[arg-type]
    assert [kind for kind, _, _ in queue.enqueued] == [
        kind for kind in scheduled() if kind is not HOLDS_SWEEP
    ]
    failed = [r for r in caplog.records if r.getMessage() == "scheduler_enqueue_failed"]
    assert [getattr(r, "task_name", None) for r in failed] == [HOLDS_SWEEP.task_name("7")]


async def test_play_ticks_at_once_and_stops_when_told_without_waiting_for_the_next() -> None:
    """`play` enqueues its first tick right away; once stop is set it returns well before
    the next tick is due."""
    queue = RecordingQueue()
    stop = asyncio.Event()
    playing = asyncio.create_task(play(queue, stop))  # type: ignore[arg-type]
    await asyncio.wait_for(queue.called.wait(), 2)
    stop.set()
    await asyncio.wait_for(playing, 1)
    assert {kind for kind, _, _ in queue.enqueued} == set(scheduled())
