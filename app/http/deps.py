"""What the lifespan hands every request: settings, the pool and the service clients."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
import httpx
from starlette.requests import Request

from app.channels.export import FeedCache
from app.llm.model import Model
from app.ops.pause import PauseCache
from app.payments.stripe_api import StripeApi
from app.pii import PiiKeys
from app.settings import Settings
from app.tasks.enqueued_marks import EnqueuedMarks
from app.tasks.oidc import OidcVerifier
from app.tasks.queue import TaskQueue


@dataclass(frozen=True)
class Deps:
    settings: Settings
    pool: asyncpg.Pool
    queue: TaskQueue
    marks: EnqueuedMarks  # the webhooks' receipts, marked enqueued in batches
    pii: PiiKeys
    oidc: OidcVerifier | None = None  # worker only
    stripe: StripeApi | None = None  # worker only
    graph: httpx.AsyncClient | None = None  # worker only: the WhatsApp Graph API
    model: Model | None = None  # worker only, when UNDERSTANDING_MODEL is set
    feeds: FeedCache = field(default_factory=FeedCache)  # public: rendered channel feeds
    pauses: PauseCache = field(default_factory=PauseCache)  # public: providers paused


def deps(request: Request) -> Deps:
    return request.state.deps
