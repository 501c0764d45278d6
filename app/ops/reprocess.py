"""Re-enqueue receipts that never finished (the runbook's reprocess playbook).

Each gets a new task name with a generation suffix, because Cloud Tasks blocks a
name for about an hour after its task ran. It is safe to run twice: the worker
checks the receipt and does nothing for an event already processed.
"""

from __future__ import annotations

from typing import Any

from app import db
from app.db import QUERIES
from app.settings import Settings
from app.tasks.queue import TaskQueue, queue_config, task_name

TASK_PATHS = {
    "stripe": ("webhooks", "/tasks/stripe/event"),
    "whatsapp": ("messages", "/tasks/whatsapp/message"),
}


async def reprocess(settings: Settings, source: str, limit: int) -> list[dict[str, Any]]:
    if source not in TASK_PATHS:
        return []
    queue_name, path = TASK_PATHS[source]
    queue = TaskQueue(queue_config(settings))
    conn = await db.connect(settings.database_url.reveal())
    done: list[dict[str, Any]] = []
    try:
        for row in await conn.fetch(QUERIES["reprocess_candidates"], source, limit):
            external_id = row["external_id"]
            generation = await conn.fetchval(
                QUERIES["next_reprocess_generation"], source, external_id
            )
            if generation is None:
                continue  # finished meanwhile
            name = task_name(f"{source}-g{generation}", external_id)
            await queue.enqueue(queue_name, name, path, {"source": source, "event_id": external_id})
            await conn.execute(QUERIES["mark_receipts_enqueued"], [source], [external_id])
            done.append({"event_id": external_id, "task_name": name})
    finally:
        await conn.close()
        await queue.close()
    return done
