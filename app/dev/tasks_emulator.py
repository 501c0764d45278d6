"""A local Cloud Tasks that the real google-cloud-tasks client talks to over gRPC.

Why our own and not PyPI's gcloud-tasks-emulator: that one accepts duplicate task
names, ignores OIDC tokens, retries with no backoff, dispatches serially per queue
and pins old protobuf/google-cloud-tasks. This one is a few hundred lines on grpcio and the
client's own message types, and reproduces what our code relies on:

- name dedupe: a second CreateTask with a name already used answers ALREADY_EXISTS
  (production blocks a name for ~1 h after its task ran; here, for the process life);
- GetTask finds a task only while it is queued (waiting, running or backing off): like
  production, a task that succeeded, gave up or was deleted (DeleteTask) is gone — that is
  how the receipts' re-drive tells a lost task from a slow one;
- ``schedule_time``, and queues paused and resumed (``pause``/``resume``, in process):
  a paused queue keeps its tasks and dispatches none;
- v2beta3 ``GetQueue`` with ``stats`` in its read mask (``ops tasks``): the tasks still
  queued, the soonest time one of them is due (a retried task is due at its next attempt, as
  in production, so a queue that dispatches keeps it ahead of now), the tasks dispatched and
  answered in the last minute and those being dispatched now;
- delivery of HTTP tasks with the ``X-CloudTasks-*`` headers, concurrently;
- retries on non-2xx or no answer, exponential backoff from ``min_backoff`` (down to
  0.1 s for tests) to ``max_backoff``, up to ``max_attempts``;
- an OIDC token minted with a local RSA key for the task's service account and
  audience, whose certificate is served at ``/oauth2/v1/certs`` in Google's format,
  so the worker's real verification path runs.

Tests run it in-process and may ask for ``extra_deliveries``: a task that succeeded
is delivered again that many times, as Cloud Tasks' at-least-once delivery may do
(or as if the worker's 2xx was lost after its commit).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt
from google.cloud.tasks_v2.types import cloudtasks
from google.cloud.tasks_v2.types import task as task_types
from google.cloud.tasks_v2beta3.types import cloudtasks as cloudtasks_v2beta3
from google.cloud.tasks_v2beta3.types import queue as queue_v2beta3
from google.protobuf import empty_pb2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.dev.servers import run_until_signalled, start_in_loop
from app.logging import configure_logging

log = logging.getLogger("app.dev.tasks_emulator")

SERVICE = "google.cloud.tasks.v2.CloudTasks"
# Queue statistics exist only in the beta API (what ``ops tasks`` reads).
SERVICE_V2BETA3 = "google.cloud.tasks.v2beta3.CloudTasks"
ISSUER = "https://accounts.google.com"
_TASK_NAME = re.compile(
    r"^projects/[^/]+/locations/[^/]+/queues/([A-Za-z0-9-]+)/tasks/([A-Za-z0-9_-]{1,500})$"
)
_QUEUE_NAME = re.compile(r"^projects/[^/]+/locations/[^/]+/queues/[A-Za-z0-9-]{1,100}$")


@dataclass
class Delivery:
    task: str  # short task id
    attempt: int
    status: int | None  # None: no answer (connection error or timeout)
    queue: str
    at: float  # time.time() the attempt ended


@dataclass
class _Task:
    proto: task_types.Task
    queue: str
    short_name: str
    extra_left: int
    due: float  # time.time() of its next dispatch: its schedule, then each retry's
    executions: int = 0
    dispatching: bool = False


@dataclass
class TasksEmulator:
    grpc_port: int
    certs_port: int
    min_backoff: float = 0.1
    max_backoff: float = 60.0
    max_attempts: int = 100
    # Production's default dispatch deadline is 10 min; locally a stuck handler should
    # show up quickly as a retry.
    dispatch_deadline: float = 30.0
    extra_deliveries: int = 0
    bind: str = "127.0.0.1"
    deliveries: list[Delivery] = field(default_factory=list)
    # Every task ever created, by full name (what the name dedupe remembers).
    tasks: dict[str, task_types.Task] = field(default_factory=dict)
    # The tasks still queued, with their dispatch: what GetTask and DeleteTask see.
    live: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    # Queues that dispatch nothing until resumed (tasks wait in them, as in production).
    paused: set[str] = field(default_factory=set)
    # Where the signing key is kept, so a restarted emulator signs with the same key and the
    # worker's cached certificate stays good (None: a fresh key per process, for tests).
    key_file: Path | None = None

    def __post_init__(self) -> None:
        pem = self._signing_key()
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        self._key = key
        self._kid = hashlib.sha256(pem).hexdigest()[:32]
        self._signer = crypt.RSASigner.from_string(pem, key_id=self._kid)
        self._running: set[asyncio.Task[None]] = set()
        # The tasks of ``live``, for the queue statistics.
        self._queued: dict[str, _Task] = {}
        self._resumed: dict[str, asyncio.Event] = {}
        self._grpc: grpc.aio.Server | None = None
        self._http: httpx.AsyncClient | None = None
        self._stop_certs: Callable[[], Awaitable[None]] | None = None

    def _signing_key(self) -> bytes:
        if self.key_file is not None and self.key_file.is_file():
            return self.key_file.read_bytes()
        pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        if self.key_file is not None:
            self.key_file.touch(mode=0o600)
            self.key_file.write_bytes(pem)
        return pem

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def certs_url(self) -> str:
        return f"http://127.0.0.1:{self.certs_port}/oauth2/v1/certs"

    # ---- OIDC -------------------------------------------------------------------

    def certificate_pem(self) -> str:
        """A self-signed X.509 certificate for the signing key, as Google publishes them."""
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hotelly-local-tasks")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(self._key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    def mint_token(
        self, account: str, audience: str, /, lifetime: int = 3600, **claims: object
    ) -> str:
        now = int(time.time())
        payload: dict[str, object] = {
            "iss": ISSUER,
            "aud": audience,
            "azp": account,
            "sub": str(int(hashlib.sha256(account.encode()).hexdigest()[:15], 16)),
            "email": account,
            "email_verified": True,
            "iat": now,
            "exp": now + lifetime,
        }
        payload.update(claims)
        return jwt.encode(self._signer, payload).decode()

    async def _certs(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {self._kid: self.certificate_pem()}, headers={"Cache-Control": "public, max-age=3600"}
        )

    # ---- gRPC ---------------------------------------------------------------------

    async def _create_task(
        self, request: cloudtasks.CreateTaskRequest, context: grpc.aio.ServicerContext
    ) -> task_types.Task:
        if not _QUEUE_NAME.match(request.parent):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "invalid queue name")
        task = task_types.Task(request.task)
        if not task.name:
            task.name = f"{request.parent}/tasks/{uuid.uuid4().int}"
        match = _TASK_NAME.match(task.name)
        if match is None or not task.name.startswith(request.parent + "/"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "invalid task name")
        assert match is not None
        if task.name in self.tasks:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, "Requested entity already exists")
        if not task.http_request.url:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "only HTTP tasks are supported")
        now = dt.datetime.now(dt.UTC)
        task.create_time = now
        if "schedule_time" not in task:
            task.schedule_time = now
        self.tasks[task.name] = task
        record = _Task(
            task,
            match.group(1),
            match.group(2),
            self.extra_deliveries,
            due=task.schedule_time.timestamp(),
        )
        running = asyncio.create_task(self._dispatch(record))
        self._running.add(running)
        self.live[task.name] = running
        self._queued[task.name] = record
        running.add_done_callback(self._running.discard)
        running.add_done_callback(lambda _: self.live.pop(task.name, None))
        running.add_done_callback(lambda _: self._queued.pop(task.name, None))
        return task

    async def _get_task(
        self, request: cloudtasks.GetTaskRequest, context: grpc.aio.ServicerContext
    ) -> task_types.Task:
        if request.name not in self.live:
            await context.abort(grpc.StatusCode.NOT_FOUND, "task not found")
        return self.tasks[request.name]

    async def _delete_task(
        self, request: cloudtasks.DeleteTaskRequest, context: grpc.aio.ServicerContext
    ) -> empty_pb2.Empty:
        running = self.live.pop(request.name, None)
        if running is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "task not found")
        assert running is not None
        running.cancel()
        return empty_pb2.Empty()

    async def _get_queue(
        self, request: cloudtasks_v2beta3.GetQueueRequest, context: grpc.aio.ServicerContext
    ) -> queue_v2beta3.Queue:
        """Any well-formed queue exists here (queues are not declared locally); its stats
        only when the read mask names them, as production answers."""
        if not _QUEUE_NAME.match(request.name):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "invalid queue name")
        short = request.name.rsplit("/", 1)[1]
        state = queue_v2beta3.Queue.State
        queue = queue_v2beta3.Queue(
            name=request.name, state=state.PAUSED if short in self.paused else state.RUNNING
        )
        if "stats" in request.read_mask.paths:
            queue.stats = self._stats(short)
        return queue

    def _stats(self, queue: str) -> queue_v2beta3.QueueStats:
        queued = [record for record in self._queued.values() if record.queue == queue]
        minute_ago = time.time() - 60
        stats = queue_v2beta3.QueueStats(
            tasks_count=len(queued),
            executed_last_minute_count=sum(
                1
                for d in self.deliveries
                if d.queue == queue and d.status is not None and d.at > minute_ago
            ),
            concurrent_dispatches_count=sum(1 for record in queued if record.dispatching),
        )
        if queued:
            soonest = min(record.due for record in queued)
            stats.oldest_estimated_arrival_time = dt.datetime.fromtimestamp(soonest, dt.UTC)
        return stats

    def pause(self, queue: str) -> None:
        self.paused.add(queue)
        self._resumed[queue] = asyncio.Event()

    def resume(self, queue: str) -> None:
        self.paused.discard(queue)
        self._resumed.pop(queue, asyncio.Event()).set()

    # ---- dispatch -----------------------------------------------------------------

    async def _dispatch(self, record: _Task) -> None:
        task = record.proto
        eta = task.schedule_time.timestamp()
        await asyncio.sleep(max(0.0, eta - time.time()))
        assert self._http is not None
        backoff = self.min_backoff
        for attempt in range(self.max_attempts):
            while record.queue in self.paused:
                await self._resumed[record.queue].wait()
            request = task.http_request
            headers = dict(request.headers)
            headers.update(
                {
                    "X-CloudTasks-QueueName": record.queue,
                    "X-CloudTasks-TaskName": record.short_name,
                    "X-CloudTasks-TaskRetryCount": str(attempt),
                    "X-CloudTasks-TaskExecutionCount": str(record.executions),
                    "X-CloudTasks-TaskETA": f"{eta:.6f}",
                }
            )
            if "oidc_token" in request:
                token = request.oidc_token
                audience = token.audience or request.url
                headers["Authorization"] = (
                    f"Bearer {self.mint_token(token.service_account_email, audience)}"
                )
            status: int | None
            record.dispatching = True
            try:
                response = await self._http.request(
                    request.http_method.name,
                    request.url,
                    content=request.body,
                    headers=headers,
                    timeout=self.dispatch_deadline,
                )
                status = response.status_code
                record.executions += 1
            except httpx.HTTPError:
                status = None
            finally:
                record.dispatching = False
            self.deliveries.append(
                Delivery(record.short_name, attempt, status, record.queue, time.time())
            )
            if status is not None and 200 <= status < 300:
                if record.extra_left == 0:
                    return
                record.extra_left -= 1
                record.due = time.time()
                continue  # redelivered at once, like a lost acknowledgement
            record.due = time.time() + backoff
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)
        log.warning("task_abandoned", extra={"task_name": record.short_name})

    # ---- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        # No idle connections kept: a worker stopped before the emulator (as tests do)
        # then has none open to it.
        self._http = httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0))
        handlers = {
            "CreateTask": grpc.unary_unary_rpc_method_handler(
                self._create_task,
                request_deserializer=cloudtasks.CreateTaskRequest.deserialize,
                response_serializer=task_types.Task.serialize,
            ),
            "GetTask": grpc.unary_unary_rpc_method_handler(
                self._get_task,
                request_deserializer=cloudtasks.GetTaskRequest.deserialize,
                response_serializer=task_types.Task.serialize,
            ),
            "DeleteTask": grpc.unary_unary_rpc_method_handler(
                self._delete_task,
                request_deserializer=cloudtasks.DeleteTaskRequest.deserialize,
                response_serializer=empty_pb2.Empty.SerializeToString,
            ),
        }
        beta_handlers = {
            "GetQueue": grpc.unary_unary_rpc_method_handler(
                self._get_queue,
                request_deserializer=cloudtasks_v2beta3.GetQueueRequest.deserialize,
                response_serializer=queue_v2beta3.Queue.serialize,
            ),
        }
        self._grpc = grpc.aio.server()
        self._grpc.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(SERVICE, handlers),
                grpc.method_handlers_generic_handler(SERVICE_V2BETA3, beta_handlers),
            )
        )
        self._grpc.add_insecure_port(f"{self.bind}:{self.grpc_port}")
        await self._grpc.start()
        certs_app = Starlette(routes=[Route("/oauth2/v1/certs", self._certs)])
        self._stop_certs = await start_in_loop(certs_app, self.certs_port, self.bind)
        log.info(
            "tasks_emulator_started",
            extra={"grpc_port": self.grpc_port, "certs_port": self.certs_port},
        )

    async def stop(self) -> None:
        for running in list(self._running):
            running.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        if self._grpc is not None:
            await self._grpc.stop(grace=None)
        if self._stop_certs is not None:
            await self._stop_certs()
        if self._http is not None:
            await self._http.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local Cloud Tasks for make run")
    # 127.0.0.1 unless told otherwise (compose's private network needs 0.0.0.0).
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--certs-port", type=int, default=8124)
    parser.add_argument("--min-backoff", type=float, default=0.5)
    parser.add_argument("--key-file", type=Path, help="keep the signing key here (make run)")
    args = parser.parse_args(argv)
    configure_logging("tasks-emulator")
    emulator = TasksEmulator(
        grpc_port=args.port,
        certs_port=args.certs_port,
        min_backoff=args.min_backoff,
        bind=args.host,
        key_file=args.key_file,
    )
    asyncio.run(run_until_signalled(emulator.start, emulator.stop))


if __name__ == "__main__":
    main()
