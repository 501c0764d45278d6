"""Role-selected route tables: public never exposes /tasks, worker never /webhooks."""

from __future__ import annotations

import httpx
from starlette.routing import Route

from app.http import public, worker
from tests.support import serve_app


def _paths(routes: list) -> set[str]:  # type: ignore[type-arg]
    return {route.path for route in routes if isinstance(route, Route)}


def test_route_tables_hold_only_their_roles_paths() -> None:
    """The public table has no /tasks path; the worker table has no /webhooks path."""
    assert {"/health", "/ready"} <= _paths(public.routes)
    assert {"/health", "/ready"} <= _paths(worker.routes)
    assert not any(path.startswith("/tasks") for path in _paths(public.routes))
    assert not any(path.startswith("/webhooks") for path in _paths(worker.routes))
    assert all(isinstance(route, Route) for route in public.routes + worker.routes)


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


async def test_worker_role_over_http(make_settings) -> None:  # type: ignore[no-untyped-def]
    """Worker answers /health and /ready, and 404 JSON for /webhooks/stripe."""
    async with serve_app(make_settings("worker")) as base, httpx.AsyncClient(base_url=base) as http:
        assert (await http.get("/health")).status_code == 200
        assert (await http.get("/ready")).json() == {"status": "ready"}
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
