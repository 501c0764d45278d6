"""An unexpected error answers 500 with only an error id, logged with its traceback."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.requests import Request
from starlette.routing import Route

from app.http import app as http_app
from tests.support import serve_app


async def _explode(request: Request) -> None:
    raise RuntimeError("secret internals")


async def test_unhandled_error_returns_only_an_error_id(
    make_settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,  # type: ignore[no-untyped-def]
) -> None:
    """The response body is exactly {"error_id": …}; the same id is on the ERROR log line
    that carries the traceback; nothing of the exception reaches the client."""
    routes = [*http_app.ROUTE_TABLES["worker"], Route("/boom", _explode)]
    monkeypatch.setitem(http_app.ROUTE_TABLES, "worker", routes)
    caplog.set_level(logging.INFO)
    async with serve_app(make_settings("worker")) as base, httpx.AsyncClient(base_url=base) as http:
        response = await http.get("/boom")
    assert response.status_code == 500
    body = response.json()
    assert list(body) == ["error_id"] and len(body["error_id"]) == 32
    assert "secret" not in response.text and "Traceback" not in response.text
    errors = [r for r in caplog.records if r.getMessage() == "unhandled_error"]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert errors[0].error_id == body["error_id"]  # type: ignore[attr-defined]
    access = [r for r in caplog.records if r.getMessage() == "http_request"]
    assert access[-1].status == 500 and access[-1].error_id == body["error_id"]  # type: ignore[attr-defined]
