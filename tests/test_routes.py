"""Role-selected route tables: each role mounts exactly its own routes (public never
exposes /tasks, worker never /webhooks), checked on the tables and over HTTP."""

from __future__ import annotations

import httpx
from starlette.routing import Route

from app.http import public, worker
from app.http.app import ROUTE_TABLES
from app.tasks.catalog import CATALOG
from tests.support import serve_app

# Starlette answers HEAD wherever it answers GET; the tables below leave that implicit.
PUBLIC_ROUTES = {
    ("/health", "GET"),
    ("/ready", "GET"),
    ("/webhooks/stripe", "POST"),
    ("/webhooks/whatsapp/meta", "GET"),
    ("/webhooks/whatsapp/meta", "POST"),
    ("/webhooks/whatsapp/evolution", "POST"),
    ("/ical/{token}.ics", "GET"),
    # The inn's console: every one but the login pages needs a session.
    ("/console/login", "GET"),
    ("/console/login", "POST"),
    ("/console/login/code", "POST"),
    ("/console/logout", "GET"),
    ("/console/logout", "POST"),
    ("/console/", "GET"),
    ("/console/commands/{id}", "GET"),
    ("/console/{inn}/hoje", "GET"),
    ("/console/{inn}/calendario", "GET"),
    ("/console/{inn}/reservas", "GET"),
    ("/console/{inn}/reservas/{code}", "GET"),
    ("/console/{inn}/conversas", "GET"),
    ("/console/{inn}/canais", "GET"),
    ("/console/{inn}/comandos", "POST"),
    # The inn's API: every one but its document needs a key.
    ("/api/v1/openapi.json", "GET"),
    ("/api/v1/property", "GET"),
    ("/api/v1/room-types", "GET"),
    ("/api/v1/ari", "GET"),
    ("/api/v1/ari/changes", "POST"),
    ("/api/v1/blocks", "POST"),
    ("/api/v1/unblocks", "POST"),
    ("/api/v1/holds", "GET"),
    ("/api/v1/holds/{id}", "GET"),
    ("/api/v1/reservations", "GET"),
    ("/api/v1/reservations/{code}", "GET"),
    ("/api/v1/reservations/{code}/cancel", "POST"),
    ("/api/v1/calendars", "GET"),
    ("/api/v1/commands/{id}", "GET"),
}


def _table(routes: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    """(path, method) of every route, HEAD left out where the route also answers GET;
    a route open to every method shows as "*"."""
    assert all(isinstance(route, Route) for route in routes), routes
    return sorted(
        (route.path, method)
        for route in routes
        for method in route.methods or {"*"}
        if not (method == "HEAD" and "GET" in route.methods)
    )


def _task_paths() -> list[str]:
    return [route.path for route in worker.routes if route.path.startswith("/tasks")]


def test_public_table_is_exactly_the_allowed_routes() -> None:
    """The public table holds exactly health, readiness, the provider webhooks, the
    channel feeds, the console and the API, each with exactly its methods, once: any other route (a
    /tasks one, a debug one) fails."""
    assert _table(public.routes) == sorted(PUBLIC_ROUTES)
    assert ROUTE_TABLES["public"] is public.routes


def test_worker_table_is_health_and_one_route_per_task_kind() -> None:
    """The worker table holds exactly /health and /ready (GET) and one POST route per task
    kind of the catalog, at the kind's path: no webhook, nothing the catalog does not
    declare."""
    expected = {("/health", "GET"), ("/ready", "GET")} | {(kind.path, "POST") for kind in CATALOG}
    assert len(expected) == 2 + len(CATALOG)  # no two kinds share a path
    assert _table(worker.routes) == sorted(expected)
    assert len(_task_paths()) == len(CATALOG)
    assert ROUTE_TABLES["worker"] is worker.routes


async def test_public_role_over_http(make_settings) -> None:  # type: ignore[no-untyped-def]
    """Public answers /health, 404 JSON for /tasks/*, 405 JSON for a wrong method."""
    async with serve_app(make_settings("public")) as base, httpx.AsyncClient(base_url=base) as http:
        health = await http.get("/health")
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        missing = await http.post("/tasks/anything", headers={"Authorization": "Bearer x"})
        assert missing.status_code == 404 and missing.json() == {"error": "not_found"}
        wrong = await http.post("/health")
        assert wrong.status_code == 405 and wrong.json() == {"error": "method_not_allowed"}
        assert "GET" in wrong.headers["allow"]


async def test_no_task_path_answers_on_the_public_role(make_settings) -> None:  # type: ignore[no-untyped-def]
    """Every /tasks path of the worker's table, with or without a bearer token, answers
    404 JSON on the public server (never 401, which would mean the route exists)."""
    paths = _task_paths()
    assert len(paths) == len(CATALOG)
    async with serve_app(make_settings("public")) as base, httpx.AsyncClient(base_url=base) as http:
        for path in paths:
            for headers in ({}, {"Authorization": "Bearer x"}):
                answer = await http.post(path, content=b"{}", headers=headers)
                assert (path, answer.status_code) == (path, 404)
                assert answer.json() == {"error": "not_found"}


async def test_worker_role_over_http(make_settings) -> None:  # type: ignore[no-untyped-def]
    """Worker answers /health and /ready, and 404 JSON for /webhooks/stripe."""
    async with serve_app(make_settings("worker")) as base, httpx.AsyncClient(base_url=base) as http:
        assert (await http.get("/health")).status_code == 200
        assert (await http.get("/ready")).json() == {"status": "ready", "task_queue": "unknown"}
        missing = await http.post("/webhooks/stripe", content=b"{}")
        assert missing.status_code == 404 and missing.json() == {"error": "not_found"}


async def test_correlation_id_is_echoed_or_generated(make_settings) -> None:  # type: ignore[no-untyped-def]
    """A valid X-Correlation-Id is echoed back; without one a fresh id is generated."""
    async with serve_app(make_settings("public")) as base, httpx.AsyncClient(base_url=base) as http:
        echoed = await http.get("/health", headers={"X-Correlation-Id": "abc-123"})
        assert echoed.headers["x-correlation-id"] == "abc-123"
        first = (await http.get("/health")).headers["x-correlation-id"]
        second = (await http.get("/health")).headers["x-correlation-id"]
        assert first and second and first != second
        hostile = await http.get("/health", headers={"X-Correlation-Id": "a b;" * 100})
        assert hostile.headers["x-correlation-id"] != "a b;" * 100
