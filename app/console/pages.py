"""The console's routes on the public role: login, the inn's pages, and the changes they
ask the worker for.

Every page but the login ones needs a session; every inn page is looked up with the
member's staff row, so another inn's code, reservation or conversation is a 404 like one
that does not exist. Pages read with SQL; a form that changes something records a command
and answers 303 to the page that shows its result (app/console/commands.py). Every
response is ``Cache-Control: no-store``; every form carries the session's CSRF token (the
login forms a cookie's), and a POST without it is a 403 that writes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import asyncpg
import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from app.channels.calendars import export_urls
from app.console import auth, commands, words
from app.conversations.replies import money
from app.db import QUERIES
from app.errors import AppError, BadRequest, Forbidden, NotFound, Unauthorized
from app.http.body import read_capped
from app.http.deps import Deps, deps
from app.inventory.properties import Property
from app.logging import annotate_request
from app.tasks import catalog

log = logging.getLogger("app.console")

MAX_FORM = 16 * 1024
LOGIN_CSRF = "hotelly_login_csrf"
SPANS = (30, 60, 90)
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.filters["money"] = lambda cents, currency: money(int(cents), currency, "pt")
TEMPLATES.filters["day"] = lambda d: f"{d:%d/%m}"
TEMPLATES.filters["moment"] = lambda t, tz, fmt="%d/%m %H:%M": t.astimezone(ZoneInfo(tz)).strftime(
    fmt
)


def _page(request: Request, template: str, code: int = 200, **context: Any) -> HTMLResponse:
    lang = words.language(request.query_params.get("lang"), request.headers.get("accept-language"))
    html = TEMPLATES.get_template(template).render(_=words.translator(lang), lang=lang, **context)
    return HTMLResponse(html, status_code=code, headers={"Cache-Control": "no-store"})


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


async def _form(request: Request) -> dict[str, str]:
    body = await read_capped(request, MAX_FORM)
    try:
        return dict(parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=50))
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the form could not be read") from None


def _secure(d: Deps) -> bool:
    return d.settings.env != "dev"


# ---- login ------------------------------------------------------------------------------


async def login(request: Request) -> Response:
    """GET /console/login: the phone form, with a fresh login CSRF cookie."""
    token = secrets.token_urlsafe(24)
    response = _page(request, "login.html", csrf=token, step="phone")
    response.set_cookie(
        LOGIN_CSRF, token, max_age=1800, httponly=True, secure=_secure(deps(request)),
        samesite="lax", path="/console",
    )  # fmt: skip
    return response


def _login_csrf(request: Request, form: dict[str, str]) -> None:
    if not auth.same(request.cookies.get(LOGIN_CSRF), form.get("csrf")):
        raise Forbidden("missing or stale form token: reload the page")


def _pepper(d: Deps) -> str:
    if d.settings.console_pepper is None:
        raise NotFound("the console is not configured (CONSOLE_PEPPER)")
    return d.settings.console_pepper.reveal()


def _client(request: Request) -> str:
    peer = request.client.host if request.client else None
    return auth.client_address(request.headers.get("x-forwarded-for"), peer)


async def ask_code(request: Request) -> Response:
    """POST /console/login: send a code if the number is a staff member's. The answer is
    the same whether it is or not (and whether or not the limit was reached)."""
    d = deps(request)
    form = await _form(request)
    _login_csrf(request, form)
    pepper = _pepper(d)
    digits = auth.e164_digits(form.get("phone", ""))
    if digits is None:
        return _page(request, "login.html", 400, csrf=form["csrf"], step="phone", error="phone")
    contact = d.pii.contact_hash(digits)
    async with d.pool.acquire() as conn:
        subjects = [f"code-phone:{digits}", f"code-ip:{_client(request)}"]
        allowed = await auth.within_limit(conn, d.pii, subjects, auth.CODES_PER_WINDOW)
        inns = await conn.fetch(QUERIES["console_staff_inns"], contact) if allowed else []
    if inns:
        code, request_id = auth.new_code(), uuid.uuid4().hex
        async with d.pool.acquire() as conn:
            await conn.execute(
                QUERIES["console_put_code"],
                contact,
                inns[0]["id"],
                auth.code_hmac(pepper, contact, code),
                auth.CODE_SECONDS,
            )
        kind = catalog.CONSOLE_LOGIN_CODE
        body = {
            "property_id": inns[0]["id"],
            "contact_hash": contact,
            "request_id": request_id,
            # Only the worker opens it; no row or log holds the code.
            "sealed": d.pii.seal(code, f"console-code:{request_id}"),
        }
        await d.queue.enqueue(kind, kind.task_name(request_id), body)
    annotate_request(outcome="code_asked")
    return _page(request, "login.html", csrf=form["csrf"], step="code", phone=form["phone"])


async def enter_code(request: Request) -> Response:
    """POST /console/login/code: the code for the number; a session when it is right."""
    d = deps(request)
    form = await _form(request)
    _login_csrf(request, form)
    pepper = _pepper(d)
    digits = auth.e164_digits(form.get("phone", ""))
    code = form.get("code", "").strip()
    wrong = _page(
        request, "login.html", 400, csrf=form["csrf"], step="code", phone=form.get("phone", ""),
        error="code",
    )  # fmt: skip
    if digits is None or not (len(code) == 6 and code.isdigit()):
        return wrong
    contact = d.pii.contact_hash(digits)
    async with d.pool.acquire() as conn:
        subjects = [f"try-phone:{digits}", f"try-ip:{_client(request)}"]
        if not await auth.within_limit(conn, d.pii, subjects, auth.TRIES_PER_WINDOW):
            return wrong
        if not await auth.try_code(conn, pepper, contact, code):
            return wrong
        session = await auth.open_session(conn, contact)
    annotate_request(outcome="logged_in")
    response = _see("/console/")
    response.set_cookie(
        auth.COOKIE, session, max_age=auth.SESSION_SECONDS, httponly=True,
        secure=_secure(d), samesite="lax", path="/console",
    )  # fmt: skip
    response.delete_cookie(LOGIN_CSRF, path="/console")
    return response


async def _session(request: Request) -> auth.Session:
    d = deps(request)
    async with d.pool.acquire() as conn:
        session = await auth.session_of(conn, request.cookies.get(auth.COOKIE))
    if session is None:
        raise Unauthorized("log in first")
    return session


async def logout_page(request: Request) -> Response:
    """GET /console/logout: a button that logs out (a GET never changes anything)."""
    session = await _session(request)
    return _page(request, "logout.html", csrf=session.csrf_token)


async def logout(request: Request) -> Response:
    """POST /console/logout: the session ends server-side, not only its cookie."""
    d = deps(request)
    session = await _session(request)
    form = await _form(request)
    if not auth.same(session.csrf_token, form.get("csrf")):
        raise Forbidden("missing or stale form token")
    async with d.pool.acquire() as conn:
        await auth.close_session(conn, request.cookies.get(auth.COOKIE))
    response = _see("/console/login")
    response.delete_cookie(auth.COOKIE, path="/console")
    return response


# ---- the inn's pages --------------------------------------------------------------------


async def _inn(request: Request) -> tuple[auth.Session, Property]:
    session = await _session(request)
    async with deps(request).pool.acquire() as conn:
        row = await conn.fetchrow(
            QUERIES["console_member_inn"], session.contact_hash, request.path_params["inn"]
        )
    if row is None:
        raise NotFound("no such inn")
    return session, Property(**dict(row))


def _inn_page(
    request: Request, template: str, session: auth.Session, prop: Property, **context: Any
) -> HTMLResponse:
    return _page(request, template, csrf=session.csrf_token, inn=prop, **context)


async def home(request: Request) -> Response:
    """GET /console/: the member's first inn's day."""
    session = await _session(request)
    async with deps(request).pool.acquire() as conn:
        inns = await conn.fetch(QUERIES["console_staff_inns"], session.contact_hash)
    return _see(f"/console/{inns[0]['code']}/hoje")


def _name(d: Deps, sealed: bytes | None) -> str | None:
    return d.pii.decrypt(sealed, "guest_name") if sealed else None


async def today(request: Request) -> Response:
    d = deps(request)
    session, prop = await _inn(request)
    day = prop.today()
    async with d.pool.acquire() as conn:
        stays = await conn.fetch(QUERIES["reservations_of_day"], prop.id, day)
        holds = await conn.fetch(QUERIES["holds_awaiting_payment"], prop.id)
        conflicts = await conn.fetch(QUERIES["open_conflicts_of_property"], prop.id)
        waiting = await conn.fetch(QUERIES["console_handed_off"], prop.id)
    by_kind: dict[str, list[dict[str, Any]]] = {"arrival": [], "departure": [], "in_house": []}
    for row in stays:
        by_kind[row["kind"]].append({**dict(row), "name": _name(d, row["guest_name_sealed"])})
    return _inn_page(
        request, "today.html", session, prop, day=day, stays=by_kind, holds=holds,
        conflicts=conflicts, waiting=waiting,
    )  # fmt: skip


async def calendar(request: Request) -> Response:
    d = deps(request)
    session, prop = await _inn(request)
    days = int(request.query_params.get("dias", "30"))
    days = days if days in SPANS else 30
    start = prop.today()
    async with d.pool.acquire() as conn:
        rows = await conn.fetch(QUERIES["console_calendar"], prop.id, start, days)
    nights: dict[str, dict[dt.date, asyncpg.Record]] = {}
    names: dict[str, str] = {}
    for row in rows:
        names[row["code"]] = row["name"]
        nights.setdefault(row["code"], {})[row["date"]] = row
    dates = [start + dt.timedelta(days=n) for n in range(days)]
    grid = {
        code: {"name": names[code], "cells": _cells(code, nights[code], dates)} for code in names
    }
    return _inn_page(
        request, "calendar.html", session, prop, grid=grid, dates=dates, days=days, spans=SPANS,
        form_token=secrets.token_urlsafe(16),
    )  # fmt: skip


def _cells(code: str, nights: dict[dt.date, asyncpg.Record], dates: list[dt.date]) -> Markup:
    """One room type's row of the calendar. Built here rather than in the template: 900
    cells of template logic made the page ~4 times slower."""
    room = escape(code)
    out = []
    for day in dates:
        n = nights.get(day)
        if n is None:
            out.append('<td class="muted">—</td>')
            continue
        _, _, _, total, free, held, booked, blocked, rate, min_stay, _, stop, cta, ctd = n
        cls = "cell-blocked" if stop or blocked == total else "cell-full" if free <= 0 else ""
        if cta or ctd:
            cls += " cell-closed"
        rule = f"<br>≥{min_stay}" if min_stay else ""
        title = ""  # what is taken, only where something is (most nights: nothing)
        if held or booked or blocked:
            title = f' title="{held} em espera · {booked} reservados · {blocked} bloqueados"'
        out.append(
            f'<td data-room="{room}" data-date="{day}" data-free="{free}"'
            f' data-blocked="{blocked}" class="{cls}"{title}>{free}/{total}<br>{rate // 100}'
            f"{rule}</td>"
        )
    return Markup("".join(out))  # noqa: S704 - numbers, dates and the escaped code only


async def reservations(request: Request) -> Response:
    d = deps(request)
    session, prop = await _inn(request)
    q = request.query_params
    search = (q.get("q") or "").strip()[:100]
    on = None
    if q.get("data"):
        try:
            on = dt.date.fromisoformat(q["data"])
        except ValueError:
            on = None
    # A code or a name: both are looked for (a name's words match its blind index).
    words = d.pii.name_index(search) if search else []
    after_day, after_code = None, None
    if q.get("depois"):
        raw_day, _, after_code = q["depois"].partition("|")
        try:
            after_day = dt.date.fromisoformat(raw_day)
        except ValueError:
            after_code = None
    async with d.pool.acquire() as conn:
        rows = await conn.fetch(
            QUERIES["console_reservations"], prop.id, search or None, words or None, on, after_day,
            after_code,
        )  # fmt: skip
    more = len(rows) > 50
    found = [{**dict(r), "name": _name(d, r["guest_name_sealed"])} for r in rows[:50]]
    cursor = f"{found[-1]['checkin']}|{found[-1]['code']}" if more else None
    return _inn_page(
        request,
        "reservations.html",
        session,
        prop,
        found=found,
        search=search,
        on=on,
        cursor=cursor,
    )


async def reservation(request: Request) -> Response:
    d = deps(request)
    session, prop = await _inn(request)
    async with d.pool.acquire() as conn:
        row = await conn.fetchrow(
            QUERIES["console_reservation"], prop.id, request.path_params["code"]
        )
        if row is None:
            raise NotFound("no such reservation")
        refunds = await conn.fetch(QUERIES["console_refunds"], row["id"])
        tiers = await conn.fetch(QUERIES["cancellation_tiers"], prop.id)
    days_before = (row["checkin"] - prop.today()).days
    percent = next((t["refund_percent"] for t in tiers if days_before >= t["days_before"]), 0)
    paid = int(row["paid_cents"] or 0) - int(row["refunded_cents"] or 0)
    return _inn_page(
        request, "reservation.html", session, prop, r=row, name=_name(d, row["guest_name_sealed"]),
        refunds=refunds, refund_preview=(paid * percent + 50) // 100, percent=percent,
        form_token=secrets.token_urlsafe(16),
    )  # fmt: skip


async def conversations(request: Request) -> Response:
    d = deps(request)
    session, prop = await _inn(request)
    chosen = request.query_params.get("id")
    transcript = []
    async with d.pool.acquire() as conn:
        waiting = await conn.fetch(QUERIES["console_handed_off"], prop.id)
        if chosen:
            try:
                conversation_id = uuid.UUID(chosen)
            except ValueError:
                raise NotFound("no such conversation") from None
            rows = await conn.fetch(QUERIES["console_transcript"], prop.id, conversation_id)
            if not rows:
                raise NotFound("no such conversation")
            transcript = [
                {**dict(r), "text": d.pii.decrypt(r["body_encrypted"], "message")} for r in rows
            ]
    return _inn_page(
        request, "conversations.html", session, prop, waiting=waiting, chosen=chosen,
        transcript=transcript, form_token=secrets.token_urlsafe(16),
    )  # fmt: skip


async def channels(request: Request) -> Response:
    d = deps(request)
    session, prop = await _inn(request)
    secret = d.settings.ical_secret.reveal() if d.settings.ical_secret else None
    async with d.pool.acquire() as conn:
        rows = await conn.fetch(QUERIES["console_channels"], prop.id)
        urls = await export_urls(conn, d.settings.public_url, secret, prop.code) if secret else []
    by_name = {u["calendar"]: u["url"] for u in urls}
    return _inn_page(request, "channels.html", session, prop, calendars=rows, urls=by_name)


# ---- changes: recorded, run by the worker ------------------------------------------------


async def change(request: Request) -> Response:
    """POST /console/<inn>/comandos: a back-office command from one of the pages' forms."""
    d = deps(request)
    session, prop = await _inn(request)
    form = await _form(request)
    if not auth.same(session.csrf_token, form.get("csrf")):
        raise Forbidden("missing or stale form token")
    token = form.get("form_token", "")
    if not 16 <= len(token) <= 64:
        raise BadRequest("the form has no token: reload the page")
    name = form.get("command", "")
    args = commands.arguments(name, form)
    command_id = await commands.record(
        d.pool, d.queue, prop, session.contact_hash, token, name, args
    )
    return _see(f"/console/commands/{command_id}")


async def command(request: Request) -> Response:
    """GET /console/commands/<id>: the command's result, polled each second until done."""
    d = deps(request)
    session = await _session(request)
    try:
        command_id = uuid.UUID(request.path_params["id"])
    except ValueError:
        raise NotFound("no such command") from None
    async with d.pool.acquire() as conn:
        row = await conn.fetchrow(QUERIES["console_command"], command_id)
        member = row is not None and await conn.fetchrow(
            QUERIES["console_member_inn"], session.contact_hash, row["property_code"]
        )
    if not member:
        raise NotFound("no such command")
    return _page(
        request, "command.html", csrf=session.csrf_token, inn={"code": row["property_code"]}, c=row,
        shown=orjson.dumps(row["result"], option=orjson.OPT_INDENT_2).decode()
        if row["result"] is not None else "",
    )  # fmt: skip


def error_page(request: Request, exc: AppError) -> Response:
    """A refusal as the console shows it: no session → the login page; else a short page
    with the status (never a trace)."""
    if exc.status == 401:
        return _see("/console/login")
    return _page(request, "error.html", exc.status, status=exc.status)


ROUTES = [
    Route("/console/login", login, methods=["GET"]),
    Route("/console/login", ask_code, methods=["POST"]),
    Route("/console/login/code", enter_code, methods=["POST"]),
    Route("/console/logout", logout_page, methods=["GET"]),
    Route("/console/logout", logout, methods=["POST"]),
    Route("/console/", home, methods=["GET"]),
    Route("/console/commands/{id}", command, methods=["GET"]),
    Route("/console/{inn}/hoje", today, methods=["GET"]),
    Route("/console/{inn}/calendario", calendar, methods=["GET"]),
    Route("/console/{inn}/reservas", reservations, methods=["GET"]),
    Route("/console/{inn}/reservas/{code}", reservation, methods=["GET"]),
    Route("/console/{inn}/conversas", conversations, methods=["GET"]),
    Route("/console/{inn}/canais", channels, methods=["GET"]),
    Route("/console/{inn}/comandos", change, methods=["POST"]),
]
