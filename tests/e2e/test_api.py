"""The inn's API (issue 22) against the real stack: keys and scopes, one inn never reaching
another's, idempotent POSTs, rate limits, problem documents, and a change that is the
same back-office command (effect and audit row) as the CLI's."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from app.api import keys
from app.settings import Secret
from tests.e2e.conftest import Stack, running_stack
from tests.e2e.test_commands import _cli_output
from tests.inventory.conftest import make_calendar
from tests.support import app_env, eventually, run_cli_async

PEPPER = "api-pepper-test"
RANGE = {"room_type": "std", "checkin": "2031-03-05", "checkout": "2031-03-07"}


@pytest.fixture
async def api(db_url: str) -> AsyncIterator[Stack]:
    settings = {"api_key_pepper": Secret(PEPPER), "api_rate_per_minute": 30}
    async with running_stack(db_url, **settings) as stack:
        async with stack.pool.acquire() as conn:
            await make_calendar(conn, [("std", 2, 2, 30000)], code="inn-a", days=20)
            await make_calendar(conn, [("std", 2, 2, 30000)], code="inn-b", days=20)
        yield stack


async def key_of(stack: Stack, inn: str = "inn-a", scope: str = "write") -> str:
    async with stack.pool.acquire() as conn:
        made = await keys.create(conn, PEPPER, inn, scope, f"{scope} key")
    return str(made["key"])


def client(stack: Stack, key: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(base_url=stack.public, headers=headers)


def is_problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert set(body) == {"type", "title", "status", "detail"} and body["status"] == status
    assert body["type"].startswith("https://hotelly.app/problems/")
    return body


async def test_reads_with_a_key_and_the_document_without(api: Stack) -> None:
    async with client(api) as anonymous:
        document = await anonymous.get("/api/v1/openapi.json")
        assert document.status_code == 200 and document.json()["openapi"] == "3.1.0"
        is_problem(await anonymous.get("/api/v1/property"), 401)
    async with client(api, await key_of(api, scope="read")) as http:
        assert (await http.get("/api/v1/property")).json()["code"] == "inn-a"
        nights = (await http.get("/api/v1/ari?from=2031-03-01&to=2031-03-03")).json()["data"]
        assert [(n["date"], n["available"], n["rate_cents"]) for n in nights] == [
            ("2031-03-01", 2, 30000),
            ("2031-03-02", 2, 30000),
        ]
        is_problem(await http.get("/api/v1/ari?from=2031-03-03&to=2031-03-01"), 400)
        page = (await http.get("/api/v1/reservations?limit=10")).json()
        assert page == {"data": [], "next_cursor": None}
        is_problem(await http.get("/api/v1/nothing-here"), 404)


async def test_a_read_key_cannot_write_and_a_revoked_key_is_refused(api: Stack) -> None:
    read = await key_of(api, scope="read")
    async with client(api, read) as http:
        answer = await http.post("/api/v1/blocks", json=RANGE, headers={"Idempotency-Key": "r1"})
        is_problem(answer, 403)
    assert await api.pool.fetchval("SELECT count(*) FROM console_commands") == 0
    key_id = await api.pool.fetchval("SELECT id FROM api_keys")
    async with api.pool.acquire() as conn:
        await keys.revoke(conn, key_id)
    async with client(api, read) as http:
        is_problem(await http.get("/api/v1/property"), 401)


async def test_another_inns_ids_are_not_found(api: Stack) -> None:
    b = await key_of(api, "inn-b")
    async with client(api, await key_of(api)) as http:
        made = await http.post("/api/v1/blocks", json=RANGE, headers={"Idempotency-Key": "a1"})
        assert made.status_code == 202
    async with client(api, b) as http:
        is_problem(await http.get(made.json()["url"]), 404)
        is_problem(await http.get("/api/v1/holds/00000000-0000-0000-0000-000000000000"), 404)
        is_problem(await http.get("/api/v1/reservations/NOPE"), 404)
        cancel = await http.post(
            "/api/v1/reservations/NOPE/cancel", headers={"Idempotency-Key": "b1"}
        )
        assert cancel.status_code == 202  # recorded: the worker refuses it as not found

        async def refused() -> dict[str, Any] | None:
            body: dict[str, Any] = (await http.get(cancel.json()["url"])).json()
            return body if body["status"] != "queued" else None

        assert (await eventually(refused))["result"]["error"] == "not_found"


async def test_an_idempotency_key_replays_its_first_answer_and_refuses_another_body(
    api: Stack,
) -> None:
    async with client(api, await key_of(api)) as http:
        is_problem(await http.post("/api/v1/blocks", json=RANGE), 400)  # no key at all
        first = await http.post("/api/v1/blocks", json=RANGE, headers={"Idempotency-Key": "k1"})
        again = await http.post("/api/v1/blocks", json=RANGE, headers={"Idempotency-Key": "k1"})
        assert first.status_code == again.status_code == 202
        assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
        other = {**RANGE, "units": 2}
        clash = await http.post("/api/v1/blocks", json=other, headers={"Idempotency-Key": "k1"})
        is_problem(clash, 409)
        bad = await http.post("/api/v1/blocks", json={"room_type": "std"},
                              headers={"Idempotency-Key": "k2"})  # fmt: skip
        is_problem(bad, 400)
        replayed = await http.post("/api/v1/blocks", json={"room_type": "std"},
                                   headers={"Idempotency-Key": "k2"})  # fmt: skip
        assert replayed.json() == bad.json()  # a refusal is an answer too
    assert await api.pool.fetchval("SELECT count(*) FROM console_commands") == 1


async def test_a_key_over_its_rate_gets_429_with_retry_after(api: Stack) -> None:
    async with client(api, await key_of(api, scope="read")) as http:
        answers = [await http.get("/api/v1/property") for _ in range(32)]
    assert [a.status_code for a in answers[:30]] == [200] * 30
    limited = answers[-1]
    is_problem(limited, 429)
    assert 1 <= int(limited.headers["retry-after"]) <= 60


async def test_an_api_change_is_the_clis_command(api: Stack) -> None:
    """The same block through the API and through the CLI: the same nights blocked and
    audit rows that differ only by who acted."""
    async with client(api, await key_of(api)) as http:
        made = await http.post("/api/v1/blocks", json=RANGE, headers={"Idempotency-Key": "c1"})
        assert made.status_code == 202

        async def done() -> dict[str, Any] | None:
            body: dict[str, Any] = (await http.get(made.json()["url"])).json()
            return body if body["status"] == "done" else None

        via_api = await eventually(done)
    code, out = await _cli_output(
        api, "block", "add", "--property", "inn-b", "--room-type", "std", "--from", "2031-03-05",
        "--to", "2031-03-07", "--apply",
    )  # fmt: skip
    assert code == 0, out
    blocked = await api.pool.fetch(
        "SELECT p.code, a.date FROM ari_days a JOIN properties p ON p.id = a.property_id"
        " WHERE a.inv_blocked = 1 ORDER BY p.code, a.date"
    )
    nights = [dt.date(2031, 3, 5), dt.date(2031, 3, 6)]
    assert [(r["code"], r["date"]) for r in blocked] == [
        *(("inn-a", d) for d in nights),
        *(("inn-b", d) for d in nights),
    ]
    rows = await api.pool.fetch(
        "SELECT actor, command, arguments, result FROM audit_log WHERE command = 'block.add'"
        " ORDER BY id"
    )
    assert [r["command"] for r in rows] == ["block.add", "block.add"]
    api_row, cli_row = rows
    assert api_row["actor"].startswith("api-key:") and cli_row["actor"] == "cli"
    assert api_row["arguments"] == cli_row["arguments"]
    without_ids = [{k: v for k, v in r["result"].items() if k != "block_id"} for r in rows]
    assert without_ids[0] == without_ids[1]
    assert via_api["result"]["outcome"] == "blocked"
    assert orjson.loads(out.splitlines()[-1])["outcome"] == "blocked"


def test_the_document_describes_exactly_the_routes() -> None:
    from app.api.openapi import DOCUMENT
    from app.api.routes import ROUTES

    routes = {(r.path, m.lower()) for r in ROUTES for m in r.methods or () if m != "HEAD"}
    documented = {(path, method) for path, ops in DOCUMENT["paths"].items() for method in ops}
    assert routes == documented


async def test_schemathesis_finds_no_server_error_and_no_answer_off_the_document(
    db_url: str,
) -> None:
    """Every operation, with generated valid and invalid input and a valid write key (no
    rate limit in the way: schemathesis is to reach the operations' logic)."""
    settings = {"api_key_pepper": Secret(PEPPER), "api_rate_per_minute": 100_000}
    async with running_stack(db_url, **settings) as api:
        async with api.pool.acquire() as conn:
            await make_calendar(conn, [("std", 2, 2, 30000)], code="inn-a", days=20)
        text = await _schemathesis(api, await key_of(api))
    assert "Rate limited" not in text, text[-3000:]


async def _schemathesis(api: Stack, key: str) -> str:
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "st"),
        "run",
        f"{api.public}/api/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_schema_conformance",
        "--max-examples",
        "15",
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        "20261204",
        "--request-timeout",
        "10",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
    )
    out, _ = await process.communicate()
    text = out.decode()
    assert process.returncode == 0, text[-6000:]
    assert re.search(r"Tested: 13\b", text) and re.search(r"\d+ generated, \d+ passed", text)
    return text


async def test_keys_from_the_cli_are_shown_once_listed_without_the_key_and_revoked(
    api: Stack,
) -> None:
    env = app_env(DATABASE_URL=api.settings.database_url.reveal(), API_KEY_PEPPER=PEPPER)
    code, out = await run_cli_async(
        env, "api-key", "create", "--property", "inn-a", "--scope", "read", "--name", "site"
    )
    assert code == 0, out
    made = orjson.loads(out[-1])
    assert made["key"].startswith("hk_") and made["scope"] == "read"
    async with client(api, made["key"]) as http:
        assert (await http.get("/api/v1/room-types")).json()["data"][0]["code"] == "std"
    code, out = await run_cli_async(env, "api-key", "list", "--property", "inn-a")
    assert code == 0 and made["key"] not in "".join(out)
    listed = orjson.loads(out[0])
    assert (listed["id"], listed["name"], listed["scope"]) == (made["id"], "site", "read")
    assert listed["last_used_at"] is not None and listed["revoked_at"] is None
    assert await api.pool.fetchval("SELECT count(*) FROM api_keys WHERE key_hmac LIKE 'hk_%'") == 0
    code, out = await run_cli_async(env, "api-key", "revoke", str(made["id"]))
    assert code == 0 and orjson.loads(out[-1])["revoked_at"]
    async with client(api, made["key"]) as http:
        is_problem(await http.get("/api/v1/room-types"), 401)
