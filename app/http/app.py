"""create_app(settings): the Starlette app for one role."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from app import db
from app.api.routes import problem
from app.console.pages import error_page
from app.errors import AppError
from app.http import public, worker
from app.http.deps import Deps
from app.http.middleware import RequestContext
from app.llm.model import model_from_settings
from app.logging import annotate_request
from app.messaging.meta import graph_client
from app.payments.stripe_api import open_stripe
from app.pii import pii_keys
from app.settings import Settings
from app.tasks.enqueued_marks import EnqueuedMarks
from app.tasks.oidc import OidcVerifier
from app.tasks.queue import TaskQueue, queue_config

log = logging.getLogger("app.http")

ROUTE_TABLES: dict[str, list[Route]] = {"public": public.routes, "worker": worker.routes}

_HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed"}
# A 503 says when to come back. Providers retry on their own schedules anyway; this is the
# honest hint for any other client (and Cloud Tasks retries with its backoff).
RETRY_AFTER_SECONDS = "5"


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_ERROR_CODES.get(exc.status_code, f"http_{exc.status_code}")
    annotate_request(reason=code)
    if request.url.path.startswith("/api/"):
        refusal = AppError(code.replace("_", " "))
        refusal.status, refusal.code = exc.status_code, code
        return problem(refusal)
    return JSONResponse({"error": code}, status_code=exc.status_code, headers=exc.headers)


async def _app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    if type(exc) is AppError:
        raise exc  # unexpected: the middleware logs it with an error id
    annotate_request(reason=exc.code)
    if request.url.path.startswith("/console/") and exc.status < 500:
        return error_page(request, exc)
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if exc.status == 503 else None
    return JSONResponse({"error": exc.code}, status_code=exc.status, headers=headers)


async def _database_unreachable(request: Request, exc: Exception) -> Response:
    """The database is down or went away: 503, so the provider (or Cloud Tasks) retries
    what it sent; nothing was acknowledged."""
    annotate_request(reason="database_unreachable", error=type(exc).__name__)
    return JSONResponse(
        {"error": "service_unavailable"},
        status_code=503,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def _path_templates(routes: list[Route]) -> dict[Any, str]:
    return {route.endpoint: route.path for route in routes}


def create_app(settings: Settings) -> Starlette:
    if settings.role not in ROUTE_TABLES:
        raise ValueError(f"unknown role {settings.role!r}")
    routes = ROUTE_TABLES[settings.role]
    templates = _path_templates(routes)

    def path_template(scope: Scope) -> str:
        return templates.get(scope.get("endpoint"), "<unmatched>")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Deps]]:
        # Nothing here contacts a service but the database: the Cloud Tasks channel,
        # the certs fetch and Stripe connect lazily, on first use.
        pool = await db.create_pool(
            settings.database_url.reveal(),
            settings.db_pool_max,
            db.application_name(settings.role),
        )
        queue = TaskQueue(queue_config(settings))
        oidc = stripe = graph = model = None
        if settings.role == "worker":
            oidc = OidcVerifier(
                certs_url=settings.oidc_certs_url,
                audience=settings.oidc_audience or "",
                allowed_emails=settings.oidc_allowed_emails,
            )
            stripe = open_stripe(settings)
            graph = graph_client(settings.whatsapp_api_base)
            model = model_from_settings(settings)
        log.info("app_started", extra={"pool_max": settings.db_pool_max})
        try:
            yield {
                "deps": Deps(
                    settings,
                    pool,
                    queue,
                    EnqueuedMarks(pool),
                    pii_keys(settings),
                    oidc,
                    stripe,
                    graph,
                    model=model,
                )
            }
        finally:
            await queue.close()
            if oidc is not None:
                await oidc.close()
            if stripe is not None:
                await stripe.close()
            if graph is not None:
                await graph.aclose()
            if model is not None:
                await model.client.aio.aclose()
            await pool.close()

    return Starlette(
        routes=routes,
        middleware=[
            Middleware(
                RequestContext,
                path_template=path_template,
                project=settings.google_cloud_project,
            )
        ],
        exception_handlers={
            HTTPException: _http_error,
            AppError: _app_error,
            **dict.fromkeys(db.UNREACHABLE, _database_unreachable),
        },
        lifespan=lifespan,
    )
