"""The worker's OIDC gate over real HTTP: every /tasks route refuses a request whose
token is missing, malformed, expired, for another audience or issuer, unverified,
forged or for an account not allowed, and runs nothing for it."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable

import httpx
import orjson
import pytest

from app.dev.tasks_emulator import TasksEmulator
from app.http import worker
from app.inventory.holds import create_hold
from app.inventory.stay import Stay
from app.tasks.catalog import CATALOG
from tests.e2e.conftest import SERVICE_ACCOUNT, Stack
from tests.inventory.conftest import make_calendar
from tests.support import hold_request

RELAY = "/tasks/outbox/relay"
Headers = dict[str, str]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token(stack: Stack, email: str = SERVICE_ACCOUNT, **claims: object) -> str:
    """A token signed by the emulator's key, for the worker's audience unless overridden."""
    audience = str(claims.pop("aud", stack.settings.worker_url))
    return stack.emulator.mint_token(email, audience, **claims)  # type: ignore[arg-type]


def _bearer(token: str) -> Headers:
    return {"Authorization": f"Bearer {token}"}


def _tampered_signature(stack: Stack) -> Headers:
    header, payload, signature = _token(stack).split(".")
    middle = len(signature) // 2  # not the last character: its low bits are only padding
    flipped = "A" if signature[middle] != "A" else "B"
    return _bearer(f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}")


def _alg_none(stack: Stack) -> Headers:
    header, payload, _ = _token(stack).split(".")
    kid = orjson.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    return _bearer(f"{_b64(orjson.dumps({'alg': 'none', 'kid': kid}))}.{payload}.")


def _header_without_kid(stack: Stack) -> Headers:
    _, payload, signature = _token(stack).split(".")
    return _bearer(f"{_b64(orjson.dumps({'alg': 'RS256', 'typ': 'JWT'}))}.{payload}.{signature}")


def _bad_base64_header(stack: Stack) -> Headers:
    _, payload, signature = _token(stack).split(".")
    return _bearer(f"x.{payload}.{signature}")


def _other_key(stack: Stack) -> Headers:
    # Same claims, signed by a key (and key id) the worker's certificates do not contain.
    stranger = TasksEmulator(grpc_port=0, certs_port=0)
    return _bearer(stranger.mint_token(SERVICE_ACCOUNT, str(stack.settings.worker_url)))


REJECTIONS: dict[str, tuple[Callable[[Stack], Headers], int]] = {
    "no-authorization": (lambda s: {}, 401),
    "empty-authorization": (lambda s: {"Authorization": ""}, 401),
    "basic-scheme": (lambda s: {"Authorization": f"Basic {_token(s)}"}, 401),
    "bearer-without-token": (lambda s: {"Authorization": "Bearer"}, 401),
    "garbage-token": (lambda s: _bearer("garbage"), 401),
    "two-segments": (lambda s: _bearer(_token(s).rsplit(".", 1)[0]), 401),
    "bad-base64-header": (_bad_base64_header, 401),
    "header-without-kid": (_header_without_kid, 401),
    "alg-none": (_alg_none, 401),
    "expired": (lambda s: _bearer(_token(s, lifetime=-120)), 401),
    "issued-in-future": (lambda s: _bearer(_token(s, iat=int(time.time()) + 600)), 401),
    "wrong-audience": (lambda s: _bearer(_token(s, aud="https://other-worker.example")), 401),
    "wrong-issuer": (lambda s: _bearer(_token(s, iss="https://evil.example")), 401),
    "email-not-verified": (lambda s: _bearer(_token(s, email_verified=False)), 401),
    "email-verified-as-string": (lambda s: _bearer(_token(s, email_verified="true")), 401),
    "tampered-signature": (_tampered_signature, 401),
    # Signed by a trusted key but with claims of the wrong type: still a 401, never a 500.
    "email-as-list": (
        lambda s: _bearer(
            s.emulator.mint_token(
                SERVICE_ACCOUNT, str(s.settings.worker_url), email=[SERVICE_ACCOUNT]
            )
        ),
        401,
    ),
    "issuer-as-list": (lambda s: _bearer(_token(s, iss=["https://accounts.google.com"])), 401),
    "expiry-as-string": (lambda s: _bearer(_token(s, exp="tomorrow")), 401),
    "unknown-key-id": (_other_key, 401),
    "unlisted-account": (
        lambda s: _bearer(_token(s, "intruder@other-project.iam.gserviceaccount.com")),
        403,
    ),
}


async def _pending_outbox_row(stack: Stack) -> tuple[int, uuid.UUID]:
    """A committed hold whose hold.created outbox row no relay has handed over yet."""
    async with stack.pool.acquire() as conn:
        cal = await make_calendar(conn, [("std", 2, 2, 30000)], days=5)
        checkin = cal.start + dt.timedelta(days=1)
        request = hold_request(
            cal.property.id,
            Stay(checkin, checkin + dt.timedelta(days=1), 2),
            ((cal.room_type_ids["std"], 1),),
            uuid.uuid4().hex,
        )
        hold = await create_hold(conn, request, ttl_seconds=2400)
        row_id: int = await conn.fetchval(
            "SELECT id FROM outbox_events WHERE event_type = 'hold.created' AND enqueued_at IS NULL"
        )
    return row_id, hold.id


async def _outbox_state(stack: Stack, row_id: int) -> tuple[object, int]:
    row = await stack.pool.fetchrow(
        "SELECT enqueued_at, attempts FROM outbox_events WHERE id = $1", row_id
    )
    return row["enqueued_at"], row["attempts"]


def _access_lines(caplog: pytest.LogCaptureFixture, path: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.getMessage() == "http_request" and getattr(r, "path", None) == path
    ]


@pytest.mark.parametrize("case", list(REJECTIONS))
async def test_rejected_token_runs_nothing(
    stack: Stack, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    """Each bad credential on POST /tasks/outbox/relay answers 401 (403 for a valid token of
    an account not allowed) with only {"error": code}; the relay does not run (its pending
    outbox row stays pending, no task is created) and the access line has no traceback."""
    caplog.set_level(logging.INFO)
    make_headers, status = REJECTIONS[case]
    row_id, _ = await _pending_outbox_row(stack)
    async with httpx.AsyncClient(base_url=stack.worker) as http:
        response = await http.post(RELAY, content=b"{}", headers=make_headers(stack))

    assert response.status_code == status, response.text
    expected = "unauthorized" if status == 401 else "forbidden"
    assert response.json() == {"error": expected}
    assert "Traceback" not in response.text
    assert await _outbox_state(stack, row_id) == (None, 0)
    assert stack.emulator.tasks == {}
    [line] = _access_lines(caplog, RELAY)
    assert line.status == status  # type: ignore[attr-defined]
    assert line.reason == expected  # type: ignore[attr-defined]
    assert line.exc_info is None and line.exc_text is None
    assert not [r for r in caplog.records if r.exc_info is not None]
    assert not [r for r in caplog.records if r.getMessage() == "unhandled_error"]


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
async def test_valid_token_runs_the_relay(
    stack: Stack, caplog: pytest.LogCaptureFixture, scheme: str
) -> None:
    """A token minted by the emulator's key for the allowed account and the worker's
    audience (scheme name in any case) is accepted: the relay runs and hands the pending
    outbox row to Cloud Tasks."""
    caplog.set_level(logging.INFO)
    row_id, hold_id = await _pending_outbox_row(stack)
    headers = {"Authorization": f"{scheme} {_token(stack)}"}
    async with httpx.AsyncClient(base_url=stack.worker) as http:
        response = await http.post(RELAY, content=b"{}", headers=headers)

    assert response.status_code == 200, response.text
    assert response.json() == {"outcome": "relayed", "settled": 1}
    enqueued_at, attempts = await _outbox_state(stack, row_id)
    assert enqueued_at is not None and attempts == 1
    assert [name.rsplit("/", 1)[1] for name in stack.emulator.tasks] == [f"expire-{hold_id}"]
    [line] = _access_lines(caplog, RELAY)
    assert line.status == 200  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer garbage"}],
    ids=["no-authorization", "garbage-token"],
)
async def test_unknown_task_path_is_404_before_authentication(
    stack: Stack, headers: Headers
) -> None:
    """A path under /tasks that names no task answers 404, not 401: routing comes before
    authentication, which belongs to each task route."""
    async with httpx.AsyncClient(base_url=stack.worker) as http:
        unknown = await http.post("/tasks/no/such/task", content=b"{}", headers=headers)
        root = await http.post("/tasks", content=b"{}", headers=headers)
    assert unknown.status_code == 404 and unknown.json() == {"error": "not_found"}
    assert root.status_code == 404 and root.json() == {"error": "not_found"}


async def test_every_task_route_requires_a_token(stack: Stack) -> None:
    """No /tasks route of the worker's table (one per task kind of the catalog) runs
    without a token, whatever its body: each answers 401 and nothing is relayed or
    enqueued."""
    row_id, _ = await _pending_outbox_row(stack)
    paths = [route.path for route in worker.routes if route.path.startswith("/tasks")]
    assert len(paths) == len(CATALOG)
    body = orjson.dumps({"event_id": "evt_x", "hold_id": str(uuid.uuid4())})
    async with httpx.AsyncClient(base_url=stack.worker) as http:
        for path in paths:
            response = await http.post(path, content=body)
            assert (path, response.status_code) == (path, 401)
            assert response.json() == {"error": "unauthorized"}
    assert await _outbox_state(stack, row_id) == (None, 0)
    assert stack.emulator.tasks == {}
