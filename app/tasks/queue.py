"""Enqueue HTTP tasks for the worker with the real google-cloud-tasks async client.

Task names are deterministic (app/tasks/catalog.py builds them), so enqueuing the same
work twice is a no-op: Cloud Tasks answers ALREADY_EXISTS, which counts as success. Each
task carries an OIDC token for the worker (service account + audience from settings) and
a correlation id: the one it is given (an outbox row's, a receipt's), else the current
request's. Bodies carry ids, or sealed fields where PII must travel — never cleartext PII.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass
from typing import Any

import grpc
import orjson
from google.api_core import exceptions as gexc
from google.cloud.tasks_v2 import CloudTasksAsyncClient
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcAsyncIOTransport
from google.cloud.tasks_v2.types import HttpMethod, HttpRequest, OidcToken, Task

from app.errors import Unavailable
from app.logging import correlation_id
from app.settings import Settings
from app.tasks.catalog import QUEUES, TaskKind

_VALID_NAME = re.compile(r"^[A-Za-z0-9_-]{1,500}$")
# The enqueue is on the webhook's answer path: fail fast so the provider retries.
ENQUEUE_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class QueueConfig:
    project: str
    location: str
    worker_url: str
    service_account: str
    audience: str
    emulator_host: str | None = None


def queue_config(settings: Settings) -> QueueConfig:
    values = (
        settings.tasks_project,
        settings.tasks_location,
        settings.worker_url,
        settings.tasks_service_account,
    )
    if not all(values):
        raise ValueError("Cloud Tasks settings are incomplete")
    project, location, worker_url, service_account = values
    assert project and location and worker_url and service_account
    return QueueConfig(
        project=project,
        location=location,
        worker_url=worker_url,
        service_account=service_account,
        audience=settings.oidc_audience or worker_url,
        emulator_host=settings.tasks_emulator_host,
    )


@dataclass
class Reachability:
    """What the last call to Cloud Tasks showed, for /ready to report without calling it."""

    ok: bool | None = None  # None: not called yet
    at: float | None = None  # time.time() of that call

    def record(self, ok: bool) -> None:
        self.ok, self.at = ok, time.time()


class TaskQueue:
    """Owns the client; create it inside the running event loop."""

    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self.reachability = Reachability()
        if config.emulator_host:
            # Reconnect quickly after a local emulator restart (gRPC's default waits 1 s+).
            channel = grpc.aio.insecure_channel(
                config.emulator_host,
                options=[
                    ("grpc.initial_reconnect_backoff_ms", 100),
                    ("grpc.max_reconnect_backoff_ms", 1000),
                ],
            )
            self._client = CloudTasksAsyncClient(
                transport=CloudTasksGrpcAsyncIOTransport(channel=channel)
            )
        else:
            self._client = CloudTasksAsyncClient()

    def _parent(self, kind: TaskKind) -> str:
        if kind.queue not in QUEUES:
            raise ValueError(f"unknown queue {kind.queue!r}")
        return str(self._client.queue_path(self.config.project, self.config.location, kind.queue))

    async def enqueue(
        self,
        kind: TaskKind,
        name: str,
        body: dict[str, Any],
        schedule_at: dt.datetime | None = None,
        *,
        correlation: str | None = None,
    ) -> bool:
        """Create the task; True if created, False if it already existed (also success).

        Raises Unavailable when Cloud Tasks cannot be reached or refuses.
        """
        if not _VALID_NAME.match(name):
            raise ValueError("task names allow only letters, digits, '-' and '_'")
        cfg = self.config
        parent = self._parent(kind)
        headers = {"Content-Type": "application/json"}
        cid = correlation or correlation_id.get()
        if cid:
            headers["X-Correlation-Id"] = cid
        task = Task(
            name=f"{parent}/tasks/{name}",
            http_request=HttpRequest(
                url=cfg.worker_url.rstrip("/") + kind.path,
                http_method=HttpMethod.POST,
                headers=headers,
                body=orjson.dumps(body),
                oidc_token=OidcToken(
                    service_account_email=cfg.service_account, audience=cfg.audience
                ),
            ),
        )
        if schedule_at is not None:
            task.schedule_time = schedule_at
        try:
            await self._client.create_task(
                parent=parent, task=task, timeout=ENQUEUE_TIMEOUT_SECONDS
            )
        except gexc.AlreadyExists:
            self.reachability.record(True)
            return False
        except gexc.GoogleAPIError as exc:
            self.reachability.record(isinstance(exc, gexc.ClientError))
            raise Unavailable(f"cannot enqueue task: {type(exc).__name__}") from None
        self.reachability.record(True)
        return True

    async def exists(self, kind: TaskKind, name: str) -> bool:
        """Whether the task is still in its queue (waiting, running or backing off).

        Cloud Tasks deletes a task once it succeeded or gave up, so False means: done, or
        lost. Raises Unavailable when Cloud Tasks cannot answer.
        """
        try:
            await self._client.get_task(
                name=f"{self._parent(kind)}/tasks/{name}", timeout=ENQUEUE_TIMEOUT_SECONDS
            )
        except gexc.NotFound:
            self.reachability.record(True)
            return False
        except gexc.GoogleAPIError as exc:
            self.reachability.record(isinstance(exc, gexc.ClientError))
            raise Unavailable(f"cannot look up task: {type(exc).__name__}") from None
        self.reachability.record(True)
        return True

    async def close(self) -> None:
        await self._client.transport.close()
