"""Re-enqueue receipts that never finished (the runbook's reprocess playbook).

The same re-drive as the scheduled one (app/tasks/receipts.py), forced: no look-up of the
current task and no generation cap, since an operator decided. Each gets a new task name
with the next generation (Cloud Tasks blocks a name for about an hour after its task ran).
Safe to run twice: the worker does nothing for an event already processed.
"""

from __future__ import annotations

from typing import Any

from app import db
from app.db import QUERIES
from app.settings import Settings
from app.tasks.catalog import RECEIPT_TASKS
from app.tasks.queue import TaskQueue, queue_config
from app.tasks.receipts import Receipt, redrive


async def reprocess(settings: Settings, source: str, limit: int) -> list[dict[str, Any]]:
    if source not in RECEIPT_TASKS:
        return []
    queue = TaskQueue(queue_config(settings))
    pool = await db.create_pool(settings.database_url.reveal(), 1)
    done: list[dict[str, Any]] = []
    try:
        async with pool.acquire() as conn:
            rows = await conn.fetch(QUERIES["reprocess_candidates"], source, limit)
        for row in rows:
            outcome, name = await redrive(pool, queue, Receipt.of(row), force=True)
            if outcome == "redriven":
                done.append({"event_id": row["external_id"], "task_name": name})
    finally:
        await pool.close()
        await queue.close()
    return done
