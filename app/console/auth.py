"""Logging in to the console with a code sent over WhatsApp, and its sessions.

- A phone number is read as E.164 by ``phonenumbers`` (Brazil by default; the ninth
  digit as written) and known by its contact hash, as staff numbers are.
- A code is 6 digits, kept as an HMAC under CONSOLE_PEPPER, valid 10 minutes for 5 tries,
  one live code per number. The public role only records it and enqueues its sending: the
  worker sends it through the inn's WhatsApp number and stores the message redacted. An
  unknown number gets the same answer as a staff one, and nothing is sent.
- Asking for codes and trying them are counted per number and per client address in the
  database, so every instance sees the same counts.
- A session is a random id in an HttpOnly cookie (Secure except ENV=dev, SameSite=Lax,
  12 hours), kept as its SHA-256; a new one at every login. Each has its CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import asyncpg
import phonenumbers

from app.db import QUERIES
from app.pii import PiiKeys

COOKIE = "hotelly_console"
SESSION_SECONDS = 12 * 3600
CODE_SECONDS = 10 * 60
CODE_TRIES = 5
# Per number and per client address: codes asked for and tries, per window.
LIMIT_WINDOW_SECONDS = 15 * 60
CODES_PER_WINDOW = 5
TRIES_PER_WINDOW = 20


@dataclass(frozen=True)
class Session:
    contact_hash: str
    csrf_token: str


def e164_digits(text: str) -> str | None:
    """The number as WhatsApp writes it ("5548991234567"), or None when it is not one."""
    try:
        number = phonenumbers.parse(text, "BR")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


def code_hmac(pepper: str, contact_hash: str, code: str) -> str:
    return hmac.new(pepper.encode(), f"{contact_hash}:{code}".encode(), hashlib.sha256).hexdigest()


def new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def client_address(forwarded_for: str | None, peer: str | None) -> str:
    """The client as Cloud Run's front end saw it: the last X-Forwarded-For entry."""
    if forwarded_for:
        return forwarded_for.split(",")[-1].strip()
    return peer or "unknown"


async def within_limit(
    conn: asyncpg.Connection, pii: PiiKeys, subjects: list[str], most: int
) -> bool:
    """Count one attempt for each subject ("phone:…", "ip:…"); False once any is over."""
    counts = [
        await conn.fetchval(
            QUERIES["console_count_attempt"], pii.contact_hash(subject), LIMIT_WINDOW_SECONDS
        )
        for subject in subjects
    ]
    return all(count <= most for count in counts)


async def try_code(conn: asyncpg.Connection, pepper: str, contact_hash: str, code: str) -> bool:
    """Whether ``code`` is the number's live code (spent when it is)."""
    matched = await conn.fetchval(
        QUERIES["console_try_code"], contact_hash, code_hmac(pepper, contact_hash, code)
    )
    return bool(matched)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def open_session(conn: asyncpg.Connection, contact_hash: str) -> str:
    """A new session for the member; returns the cookie's value."""
    session_id = secrets.token_urlsafe(32)
    await conn.execute(
        QUERIES["console_open_session"],
        _hash(session_id),
        contact_hash,
        secrets.token_urlsafe(24),
        SESSION_SECONDS,
    )
    return session_id


async def session_of(conn: asyncpg.Connection, cookie: str | None) -> Session | None:
    if not cookie:
        return None
    row = await conn.fetchrow(QUERIES["console_session"], _hash(cookie))
    return Session(row["contact_hash"], row["csrf_token"]) if row else None


async def close_session(conn: asyncpg.Connection, cookie: str | None) -> None:
    if cookie:
        await conn.execute(QUERIES["console_close_session"], _hash(cookie))


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))
