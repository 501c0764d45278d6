"""An inn (a property) as the app works with it, read by its code."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from app.db import QUERIES
from app.errors import NotFound


@dataclass(frozen=True)
class Property:
    id: int
    code: str
    name: str
    timezone: str
    currency: str
    whatsapp_phone_number_id: str | None
    settings: dict[str, Any]

    def today(self) -> dt.date:
        """Today in the property's own timezone: stays are in local dates."""
        return dt.datetime.now(ZoneInfo(self.timezone)).date()


async def get_property(conn: asyncpg.Connection, code: str) -> Property:
    row = await conn.fetchrow(QUERIES["property_by_code"], code)
    if row is None:
        raise NotFound(f"no property with code {code!r}")
    return Property(**dict(row))
