"""API keys: created with a scope for one property, shown once, kept as an HMAC under
API_KEY_PEPPER, revoked for good. ``hk_`` and 32 random bytes, URL-safe."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import asyncpg

from app.db import QUERIES
from app.errors import BadRequest, NotFound
from app.inventory.properties import get_property

PREFIX = "hk_"
SCOPES = ("read", "write")


@dataclass(frozen=True)
class Key:
    id: int
    property_id: int
    scope: str
    count: int  # requests this minute, this one included
    retry_after: int  # seconds left in the minute


def key_hmac(pepper: str, key: str) -> str:
    return hmac.new(pepper.encode(), key.encode(), hashlib.sha256).hexdigest()


async def create(
    conn: asyncpg.Connection, pepper: str, property_code: str, scope: str, name: str
) -> dict[str, Any]:
    if scope not in SCOPES:
        raise BadRequest(f"scope must be one of {', '.join(SCOPES)}")
    if not name.strip() or len(name) > 100:
        raise BadRequest("give the key a name (at most 100 characters)")
    prop = await get_property(conn, property_code)
    key = PREFIX + secrets.token_urlsafe(32)
    row = await conn.fetchrow(
        QUERIES["api_key_create"], prop.id, name.strip(), scope, key_hmac(pepper, key)
    )
    return {"id": row["id"], "name": name.strip(), "scope": scope, "key": key}


async def listed(conn: asyncpg.Connection, property_code: str) -> list[dict[str, Any]]:
    prop = await get_property(conn, property_code)
    return [dict(row) for row in await conn.fetch(QUERIES["api_key_list"], prop.id)]


async def revoke(conn: asyncpg.Connection, key_id: int) -> dict[str, Any]:
    row = await conn.fetchrow(QUERIES["api_key_revoke"], key_id)
    if row is None:
        raise NotFound(f"no API key {key_id}")
    return {"id": row["id"], "revoked_at": row["revoked_at"]}


async def used(conn: asyncpg.Connection, pepper: str, authorization: str | None) -> Key | None:
    """The live key a ``Bearer hk_…`` header names (its use counted), or None."""
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.startswith(PREFIX) or len(key) > 100:
        return None
    row = await conn.fetchrow(QUERIES["api_key_use"], key_hmac(pepper, key.strip()))
    return Key(**dict(row)) if row else None
