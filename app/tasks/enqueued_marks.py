"""Group commit of the receipts' ``enqueued_at`` marker.

A webhook may answer only once its receipt is marked enqueued. Committed one request at
a time, that UPDATE cost the webhook about a sixth of its throughput (docs/performance.md).
Here one UPDATE and one commit serve every request that reached that point while the
previous batch was being written, and each caller still waits for its own commit.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg

from app.db import QUERIES


@dataclass
class EnqueuedMarks:
    pool: asyncpg.Pool
    _waiting: list[tuple[str, str, asyncio.Future[None]]] = field(default_factory=list)
    _writer: asyncio.Task[None] | None = None

    async def mark(self, source: str, external_id: str) -> None:
        """Return once this receipt's marker is committed; raise what the UPDATE raised."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((source, external_id, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        await done

    async def _write(self) -> None:
        # One batch in flight at a time: whoever arrives meanwhile joins the next one.
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    async with self.pool.acquire() as conn:
                        await conn.execute(
                            QUERIES["mark_receipts_enqueued"],
                            [source for source, _, _ in batch],
                            [external_id for _, external_id, _ in batch],
                        )
                except Exception as exc:  # every waiter gets the failure, as if alone
                    for _, _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                else:
                    for _, _, done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            self._writer = None
