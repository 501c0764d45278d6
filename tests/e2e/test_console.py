"""The inn's console (issue 21) over HTTP against the real stack: logging in with a code
sent through the inn's WhatsApp number, sessions, CSRF, one inn never seeing another's,
and changes that the public role only records and the worker runs."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from app.messaging.credentials import store_staff_numbers
from app.pii import pii_keys
from app.settings import Secret
from tests.e2e.conftest import Stack, rows_as_text, running_stack
from tests.e2e.test_commands import _cli_output
from tests.e2e.test_whatsapp_conversations import settled
from tests.inventory.conftest import make_calendar
from tests.support import eventually

STAFF = "5548991234567"  # as the property file has it
STAFF_WRITTEN = "(48) 99123-4567"  # as a person types it on the login page
OTHER_STAFF = "5548998887777"
B_STAFF = "5511955550000"


@pytest.fixture
async def console(db_url: str) -> AsyncIterator[Stack]:
    settings = {"env": "dev", "console_pepper": Secret("console-pepper-test")}
    async with running_stack(db_url, **settings) as stack:
        pii = pii_keys(stack.settings)
        async with stack.pool.acquire() as conn:
            a = await make_calendar(conn, [("std", 2, 2, 30000)], code="inn-a", days=40)
            b = await make_calendar(conn, [("std", 2, 2, 30000)], code="inn-b", days=40)
            await store_staff_numbers(conn, a.property.id, (STAFF, OTHER_STAFF), pii)
            await store_staff_numbers(conn, b.property.id, (B_STAFF,), pii)
            # Staff who have not written in 24 hours get the code as the inn's template.
            await conn.execute(
                "UPDATE properties SET settings = jsonb_set(settings, '{whatsapp,templates}',"
                ' \'{"login_code": {"pt": "hotelly_login_code"}}\')'
            )
        yield stack


def client(stack: Stack) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.public, follow_redirects=False)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def ask_code(http: httpx.AsyncClient, phone: str) -> httpx.Response:
    page = await http.get("/console/login")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    return await http.post("/console/login", data={"csrf": _csrf(page.text), "phone": phone})


async def code_sent(stack: Stack, to: str, before: int = 0) -> str:
    async def sent() -> list[str]:
        codes = [m["parameters"][0] for m in stack.graph.sent if m["to"] == to]
        return codes if len(codes) > before else []

    return (await eventually(sent))[-1]


async def enter(http: httpx.AsyncClient, phone: str, code: str) -> httpx.Response:
    page = await http.get("/console/login")
    return await http.post(
        "/console/login/code", data={"csrf": _csrf(page.text), "phone": phone, "code": code}
    )


async def logged_in(stack: Stack, phone: str = STAFF) -> httpx.AsyncClient:
    http = client(stack)
    before = len([m for m in stack.graph.sent if m["to"] == phone])
    await ask_code(http, phone)
    answer = await enter(http, phone, await code_sent(stack, phone, before))
    assert answer.status_code == 303 and answer.headers["location"] == "/console/", answer.text
    return http


async def test_a_staff_member_logs_in_with_the_code_sent_over_whatsapp(
    console: Stack, all_logs: pytest.LogCaptureFixture
) -> None:
    http = client(console)
    asked = await ask_code(http, STAFF_WRITTEN)
    assert asked.status_code == 200 and "código de 6 dígitos" in asked.text
    code = await code_sent(console, STAFF)
    assert re.fullmatch(r"\d{6}", code)
    answer = await enter(http, STAFF_WRITTEN, code)
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=43200" in cookie
    home = await http.get("/console/")
    assert home.status_code == 303 and home.headers["location"] == "/console/inn-a/hoje"
    today = await http.get("/console/inn-a/hoje")
    assert today.status_code == 200 and "Chegadas" in today.text
    assert today.headers["cache-control"] == "no-store"
    spanish = await http.get("/console/inn-a/hoje", headers={"Accept-Language": "es-AR,es"})
    assert "Llegadas" in spanish.text and 'lang="es"' in spanish.text
    assert "Arrivals" in (await http.get("/console/inn-a/hoje?lang=en")).text
    # The code is in no transcript, row or log: the message is stored redacted.
    await settled(console)
    rows = await rows_as_text(console)
    pii = pii_keys(console.settings)
    bodies = [
        pii.decrypt(r["body_encrypted"], "message")
        for r in await console.pool.fetch("SELECT body_encrypted FROM messages")
    ]
    assert bodies and all("••••••" in b and code not in b for b in bodies)
    logged = "".join(r.getMessage() + str(r.__dict__) for r in all_logs.records)
    assert code not in rows and code not in logged and STAFF not in logged
    await http.aclose()


async def test_an_unknown_number_gets_the_same_answer_and_nothing_is_sent(
    console: Stack,
) -> None:
    async with client(console) as http:
        known = await ask_code(http, STAFF)
        unknown = await ask_code(http, "+55 48 99000-1111")
    same = [re.sub(r'value="[^"]*"', "", r.text) for r in (known, unknown)]
    assert known.status_code == unknown.status_code == 200 and same[0] == same[1]
    await code_sent(console, STAFF)
    await settled(console)
    assert [m["to"] for m in console.graph.sent] == [STAFF]


async def test_five_wrong_codes_lock_the_code(console: Stack) -> None:
    async with client(console) as http:
        await ask_code(http, STAFF)
        code = await code_sent(console, STAFF)
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        for _ in range(5):
            assert (await enter(http, STAFF, wrong)).status_code == 400
        assert (await enter(http, STAFF, code)).status_code == 400  # spent by the fifth


async def test_an_expired_a_replayed_and_another_numbers_code_fail(console: Stack) -> None:
    async with client(console) as http:
        await ask_code(http, STAFF)
        code = await code_sent(console, STAFF)
        await console.pool.execute("UPDATE console_codes SET expires_at = now()")
        assert (await enter(http, STAFF, code)).status_code == 400

        await ask_code(http, OTHER_STAFF)
        other = await code_sent(console, OTHER_STAFF)
        await ask_code(http, STAFF)
        mine = await code_sent(console, STAFF, before=1)
        assert (await enter(http, STAFF, other)).status_code == 400  # not this number's
        assert (await enter(http, STAFF, mine)).status_code == 303
        assert (await enter(http, STAFF, mine)).status_code == 400  # a replay


async def test_a_form_without_its_csrf_token_is_refused_and_writes_nothing(
    console: Stack,
) -> None:
    async with client(console) as http:
        await http.get("/console/login")
        refused = await http.post("/console/login", data={"phone": STAFF})
        assert refused.status_code == 403 and "Traceback" not in refused.text
    assert await console.pool.fetchval("SELECT count(*) FROM console_codes") == 0
    http = await logged_in(console)
    form = {"command": "block.add", "room_type": "std", "checkin": "2031-03-05",
            "checkout": "2031-03-07", "units": "1", "form_token": "f" * 20}  # fmt: skip
    assert (await http.post("/console/inn-a/comandos", data=form)).status_code == 403
    assert (await http.post("/console/logout")).status_code == 403
    assert await console.pool.fetchval("SELECT count(*) FROM console_commands") == 0
    await http.aclose()


async def test_logout_ends_the_session_on_the_server(console: Stack) -> None:
    http = await logged_in(console)
    cookie = http.cookies.get("hotelly_console")
    page = await http.get("/console/logout")  # a button, not a change
    assert page.status_code == 200 and cookie == http.cookies.get("hotelly_console")
    answer = await http.post("/console/logout", data={"csrf": _csrf(page.text)})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/login"
    async with client(console) as stolen:  # the old cookie, kept by someone
        stolen.cookies.set("hotelly_console", str(cookie))
        again = await stolen.get("/console/inn-a/hoje")
    assert again.status_code == 303 and again.headers["location"] == "/console/login"
    await http.aclose()


async def test_removing_a_staff_number_ends_its_sessions(console: Stack) -> None:
    http = await logged_in(console)
    pii = pii_keys(console.settings)
    inn = await console.pool.fetchval("SELECT id FROM properties WHERE code = 'inn-a'")
    async with console.pool.acquire() as conn:
        await store_staff_numbers(conn, inn, (OTHER_STAFF,), pii)
    gone = await http.get("/console/inn-a/hoje")
    assert gone.status_code == 303 and gone.headers["location"] == "/console/login"
    await http.aclose()


async def test_inn_a_sees_nothing_of_inn_b(console: Stack) -> None:
    b_member = await logged_in(console, B_STAFF)
    page = await b_member.get("/console/inn-b/conversas")
    b_form = {"csrf": _csrf(page.text), "form_token": "t" * 20, "command": "conversation.bot",
              "conversation_id": "00000000-0000-0000-0000-000000000000"}  # fmt: skip
    http = await logged_in(console)
    csrf = _csrf((await http.get("/console/inn-a/hoje")).text)
    for path in ("hoje", "calendario", "reservas", "reservas/ANY", "conversas", "canais"):
        answer = await http.get(f"/console/inn-b/{path}")
        assert answer.status_code == 404, path
        assert (await http.get(f"/console/nowhere/{path}")).status_code == 404
    form = {"csrf": csrf, "form_token": "x" * 20, "command": "block.add", "room_type": "std",
            "checkin": "2031-03-05", "checkout": "2031-03-07", "units": "1"}  # fmt: skip
    assert (await http.post("/console/inn-b/comandos", data=form)).status_code == 404
    # A command of inn B's is not inn A's to see.
    recorded = await b_member.post("/console/inn-b/comandos", data=b_form)
    assert recorded.status_code == 303
    assert (await http.get(recorded.headers["location"])).status_code == 404
    await http.aclose()
    await b_member.aclose()


async def test_a_block_is_recorded_by_the_public_role_and_made_by_the_worker(
    console: Stack,
) -> None:
    http = await logged_in(console)
    page = await http.get("/console/inn-a/calendario?dias=60")
    assert page.status_code == 200
    form = {"csrf": _csrf(page.text), "form_token": "block-" + "a" * 16, "command": "block.add",
            "room_type": "std", "checkin": "2031-03-05", "checkout": "2031-03-07",
            "units": "1"}  # fmt: skip
    console.emulator.pause("default")  # the worker's queue: the public role alone acts
    answer = await http.post("/console/inn-a/comandos", data=form)
    assert answer.status_code == 303
    again = await http.post("/console/inn-a/comandos", data=form)  # the form sent twice
    assert again.headers["location"] == answer.headers["location"]
    queued = await http.get(answer.headers["location"])
    assert "Aplicando" in queued.text and 'http-equiv="refresh"' in queued.text
    assert await console.pool.fetchval("SELECT count(*) FROM blocks") == 0
    assert await console.pool.fetchval("SELECT sum(inv_blocked) FROM ari_days") == 0
    console.emulator.resume("default")

    async def done() -> str | None:
        status = await console.pool.fetchval("SELECT status FROM console_commands")
        return status if status != "queued" else None

    assert await eventually(done) == "done"
    blocked = await console.pool.fetch(
        "SELECT date FROM ari_days a JOIN properties p ON p.id = a.property_id"
        " WHERE p.code = 'inn-a' AND inv_blocked = 1 ORDER BY date"
    )
    assert [r["date"] for r in blocked] == [dt.date(2031, 3, 5), dt.date(2031, 3, 6)]
    audit = await console.pool.fetchrow("SELECT actor, command FROM audit_log")
    assert audit["command"] == "block.add" and audit["actor"] != "cli"
    assert await console.pool.fetchval("SELECT count(*) FROM console_commands") == 1
    await http.aclose()


async def test_asking_for_codes_is_limited_per_number_and_per_address(console: Stack) -> None:
    """Past the window's limit a number gets the same answer and no new code; so does
    any number from an address past its own (Cloud Run's last X-Forwarded-For entry)."""
    async with client(console) as http:
        answers = [(await ask_code(http, STAFF)).status_code for _ in range(7)]
        assert answers == [200] * 7

        async def five() -> list[str]:
            sent = [m for m in console.graph.sent if m["to"] == STAFF]
            return sent if len(sent) >= 5 else []

        await eventually(five)
        await settled(console)
        assert len([m for m in console.graph.sent if m["to"] == STAFF]) == 5
        address = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"}
        page = await http.get("/console/login")
        for n in range(5):  # five numbers nobody registered, from one address
            form = {"csrf": _csrf(page.text), "phone": f"+55 11 95555-100{n}"}
            assert (
                await http.post("/console/login", data=form, headers=address)
            ).status_code == 200
        form = {"csrf": _csrf(page.text), "phone": "+55 11 95555-0000"}
        assert (await http.post("/console/login", data=form, headers=address)).status_code == 200
        await settled(console)
        assert [m for m in console.graph.sent if m["to"] == B_STAFF] == []
        elsewhere = {"X-Forwarded-For": "203.0.113.9, 198.51.100.8"}
        assert (await http.post("/console/login", data=form, headers=elsewhere)).status_code == 200
        await code_sent(console, B_STAFF)


async def test_dev_console_session_opens_a_session_for_a_staff_number(console: Stack) -> None:
    code, out = await _cli_output(console, "dev", "console-session", "--phone", "+55 48 99123-4567")
    assert code == 0, out
    name, _, value = orjson.loads(out.splitlines()[-1])["cookie"].partition("=")
    assert name == "hotelly_console"
    async with client(console) as http:
        http.cookies.set(name, value)
        assert (await http.get("/console/inn-a/hoje")).status_code == 200
    code, out = await _cli_output(console, "dev", "console-session", "--phone", "+5511900000000")
    assert code != 0 and "staff" in out


async def test_reservations_are_found_by_code_and_by_name(console: Stack) -> None:
    pii = pii_keys(console.settings)
    inn = await console.pool.fetchval("SELECT id FROM properties WHERE code = 'inn-a'")
    async with console.pool.acquire() as conn:
        for code, name in (("ABCDEF", "Joana Canary"), ("GHIJKL", "Pedro Alves")):
            hold = await conn.fetchval(
                "INSERT INTO holds (property_id, status, checkin, checkout, guests, total_cents,"
                " currency, expires_at, create_idempotency_key, request_fingerprint, closed_at)"
                " VALUES ($1, 'converted', '2031-03-05', '2031-03-07', 2, 60000, 'BRL', now(),"
                " $2, 'f', now()) RETURNING id",
                inn,
                code,
            )
            payment = await conn.fetchval(
                "INSERT INTO payments (provider, provider_object_id, hold_id, status,"
                " amount_cents, currency) VALUES ('stripe', $1, $2, 'succeeded', 60000, 'BRL')"
                " RETURNING id",
                f"cs_{code}",
                hold,
            )
            await conn.execute(
                "INSERT INTO reservations (hold_id, payment_id, property_id, code, checkin,"
                " checkout, guests, total_cents, currency, guest_name_sealed, guest_name_index)"
                " VALUES ($1, $2, $3, $4, '2031-03-05', '2031-03-07', 2, 60000, 'BRL', $5, $6)",
                hold,
                payment,
                inn,
                code,
                pii.encrypt(name, "guest_name"),
                pii.name_index(name),
            )
    http = await logged_in(console)
    for search, found in (("abcdef", "ABCDEF"), ("joana", "ABCDEF"), ("alves", "GHIJKL")):
        page = (await http.get("/console/inn-a/reservas", params={"q": search})).text
        codes = re.findall(r"/reservas/([A-Z]{6})", page)
        assert codes == [found], (search, codes)
    everyone = (await http.get("/console/inn-a/reservas", params={"data": "2031-03-06"})).text
    assert sorted(re.findall(r"/reservas/([A-Z]{6})", everyone)) == ["ABCDEF", "GHIJKL"]
    assert "Joana Canary" in everyone
    await http.aclose()
