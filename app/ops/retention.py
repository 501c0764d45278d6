"""Retention: old rows removed, idle guests erased, in small batches (issue 18).

Each category is a pair of named queries in sql/queries/retention.sql, where its period is
written: a count of what is due (the preview) and a batch that removes or erases up to
``BATCH_SIZE`` due rows in one statement — one short transaction that skips rows others
hold — repeated until a batch comes back short. The daily worker task and ``ops retention
--apply`` run the same code; each run logs one ``retention`` line per category, counts only.

Receipts go before guests: a guest idle for a year has receipts older than 90 days only,
so by the time guests are erased no sealed copy of their messages is left in a receipt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import asyncpg

from app.db import QUERIES

log = logging.getLogger("app.ops")

# Rows per statement: each batch locks at most this many rows, for milliseconds.
BATCH_SIZE = 1000
# Batches per category per run: 100,000 rows, seconds of work, so even the first run over
# years of rows ends well inside Cloud Scheduler's attempt deadline (3 minutes by default);
# what is left waits for the next day.
MAX_BATCHES = 100


@dataclass(frozen=True)
class Category:
    name: str
    due: str  # named query: how many rows are due
    batch: str  # named query: remove or erase up to $1 of them, returning how many


CATEGORIES = (
    Category(
        "processed_events", "retention_processed_events_due", "retention_processed_events_batch"
    ),
    Category("outbox_sent", "retention_outbox_sent_due", "retention_outbox_sent_batch"),
    Category("outbox_dead", "retention_outbox_dead_due", "retention_outbox_dead_batch"),
    Category(
        "idempotency_keys", "retention_idempotency_keys_due", "retention_idempotency_keys_batch"
    ),
    Category("audit_log", "retention_audit_log_due", "retention_audit_log_batch"),
    Category("guests", "retention_guests_due", "retention_guests_batch"),
    Category("walk_in_names", "retention_walk_in_names_due", "retention_walk_in_names_batch"),
    Category("console", "retention_console_due", "retention_console_batch"),
)


async def _drain(conn: asyncpg.Connection, category: Category) -> tuple[int, bool]:
    """Batches until one comes back short: (rows done, whether the cap left some due)."""
    done = 0
    for _ in range(MAX_BATCHES):
        rows: int = await conn.fetchval(QUERIES[category.batch], BATCH_SIZE)
        done += rows
        if rows < BATCH_SIZE:
            return done, False
    return done, True


async def retention(conn: asyncpg.Connection, *, apply: bool) -> dict[str, Any]:
    """Rows due per category (``apply``: removed or erased, and whether more are due than
    one run takes). ``conn`` must not be inside a transaction: each batch commits alone."""
    counts: dict[str, int] = {}
    more: list[str] = []
    for category in CATEGORIES:
        if apply:
            counts[category.name], left = await _drain(conn, category)
            if left:
                more.append(category.name)
        else:
            counts[category.name] = await conn.fetchval(QUERIES[category.due])
        log.info(
            "retention",
            extra={
                "category": category.name,
                "rows": counts[category.name],
                "applied": apply,
                "more": category.name in more,
            },
        )
    return {
        "command": "retention",
        "outcome": "applied" if apply else "preview",
        "rows": counts,
        "more": more,
    }
