"""Runs the runbook's SQL files (docs/operations/sql) exactly as an operator would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg

OPS_SQL_DIR = Path(__file__).resolve().parent.parent.parent / "docs" / "operations" / "sql"

CHECKS = {
    "reconcile": "reconcile_ari_vs_holds.sql",
    "stuck-holds": "find_stuck_holds.sql",
    "payments-without-reservation": "payments_without_reservation.sql",
    "stale-receipts": "stale_receipts.sql",
    "outbox-dead": "outbox_dead.sql",
    "conflicts": "open_conflicts.sql",
    "channels": "channel_health.sql",
}


async def run_check(conn: asyncpg.Connection, name: str) -> list[dict[str, Any]]:
    """Rows the named check finds; an empty list means all is well."""
    rows = await conn.fetch((OPS_SQL_DIR / CHECKS[name]).read_text())
    return [dict(row) for row in rows]
