"""Each queue's backlog as Cloud Tasks reports it (runbook §7.6): how many tasks wait and how
late the soonest of them is.

Only the v2beta3 API has queue statistics: ``GetQueue`` returns them when the read mask
names ``stats``. Its ``oldest_estimated_arrival_time`` is the soonest time a queued task is
due (a retried task is due at its next attempt), so it lying in the past means tasks that
should run are waiting: the queue is paused, throttled or its worker cannot keep up. The
depth alone says little, since the ``holds`` queue keeps one expiry task per hold, due when
the hold expires.

A queue that cannot be read is reported with the reason, never as an empty one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

import grpc
from google.api_core import exceptions as gexc
from google.auth.exceptions import GoogleAuthError
from google.cloud.tasks_v2beta3 import CloudTasksAsyncClient, GetQueueRequest, Queue
from google.cloud.tasks_v2beta3.services.cloud_tasks.transports import (
    CloudTasksGrpcAsyncIOTransport,
)
from google.protobuf.field_mask_pb2 import FieldMask

from app.settings import Settings
from app.tasks.catalog import QUEUES

# A read-only look-up on the operator's screen or the status task: a queue that does not
# answer in this long is reported unreadable rather than holding the others up.
GET_QUEUE_TIMEOUT_SECONDS = 5.0
_READ_MASK = FieldMask(paths=["name", "state", "stats"])


@dataclass(frozen=True)
class QueueBacklog:
    queue: str
    state: str  # RUNNING, PAUSED or DISABLED
    tasks: int  # waiting, running or backing off
    oldest_due: dt.datetime | None  # the soonest a queued task is due; None when empty
    executed_last_minute: int
    dispatching: int

    def late_seconds(self, now: dt.datetime) -> int:
        """How long the soonest due task has waited past its time (0 when none has)."""
        if self.oldest_due is None:
            return 0
        return max(0, int((now - self.oldest_due).total_seconds()))


@dataclass(frozen=True)
class Unreadable:
    queue: str
    reason: str


Backlog = dict[str, QueueBacklog | Unreadable]


def _client(emulator_host: str | None) -> CloudTasksAsyncClient:
    if emulator_host:
        channel = grpc.aio.insecure_channel(emulator_host)
        return CloudTasksAsyncClient(transport=CloudTasksGrpcAsyncIOTransport(channel=channel))
    return CloudTasksAsyncClient()


async def _read(client: CloudTasksAsyncClient, name: str, queue: str) -> QueueBacklog:
    found = await client.get_queue(
        request=GetQueueRequest(name=name, read_mask=_READ_MASK),
        timeout=GET_QUEUE_TIMEOUT_SECONDS,
    )
    stats = found.stats
    return QueueBacklog(
        queue=queue,
        state=Queue.State(found.state).name,
        tasks=stats.tasks_count,
        oldest_due=stats.oldest_estimated_arrival_time,
        executed_last_minute=stats.executed_last_minute_count,
        dispatching=stats.concurrent_dispatches_count,
    )


async def _read_or_why(
    client: CloudTasksAsyncClient, name: str, queue: str
) -> QueueBacklog | Unreadable:
    try:
        # The client retries an unavailable service; this bounds the whole look-up.
        async with asyncio.timeout(GET_QUEUE_TIMEOUT_SECONDS):
            return await _read(client, name, queue)
    except TimeoutError:
        return Unreadable(queue, f"no answer within {GET_QUEUE_TIMEOUT_SECONDS:g} s")
    except gexc.GoogleAPIError as exc:
        return Unreadable(queue, f"Cloud Tasks answered {type(exc).__name__}")


async def read_backlog(project: str, location: str, emulator_host: str | None) -> Backlog:
    """Every queue of the catalog, read concurrently (call it inside the running loop)."""
    try:
        client = _client(emulator_host)
    except GoogleAuthError as exc:
        reason = f"no Google credentials ({type(exc).__name__})"
        return {queue: Unreadable(queue, reason) for queue in QUEUES}
    names = {queue: client.queue_path(project, location, queue) for queue in QUEUES}
    try:
        answers = await asyncio.gather(*(_read_or_why(client, names[q], q) for q in QUEUES))
    finally:
        await client.transport.close()
    return {answer.queue: answer for answer in answers}


async def backlog_of(settings: Settings) -> Backlog:
    """The backlog through the settings' Cloud Tasks (reading a queue needs only its project
    and location), or why it cannot be read."""
    if not (settings.tasks_project and settings.tasks_location):
        reason = "TASKS_PROJECT and TASKS_LOCATION are not both set"
        return {queue: Unreadable(queue, reason) for queue in QUEUES}
    return await read_backlog(
        settings.tasks_project, settings.tasks_location, settings.tasks_emulator_host
    )
