"""The batched enqueued marker: every caller returns only once its own mark is committed."""

from __future__ import annotations

import asyncio

import asyncpg

from app import db
from app.tasks.enqueued_marks import EnqueuedMarks


async def _receipts(conn: asyncpg.Connection, n: int) -> list[str]:
    ids = [f"evt_mark_{i}" for i in range(n)]
    await conn.executemany(
        "INSERT INTO processed_events (source, external_id, event_type, details, task_name)"
        " VALUES ('stripe', $1, 'checkout.session.completed', '{}', $1)",
        [(i,) for i in ids],
    )
    return ids


async def _unmarked(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM processed_events WHERE enqueued_at IS NULL")


async def test_concurrent_marks_are_all_committed_in_fewer_statements(
    db_url: str, conn: asyncpg.Connection
) -> None:
    ids = await _receipts(conn, 200)
    pool = await db.create_pool(db_url, 4)
    try:
        marks = EnqueuedMarks(pool)
        await asyncio.gather(*(marks.mark("stripe", i) for i in ids))
        # Each mark's commit is visible to another connection the moment mark() returns.
        assert await _unmarked(conn) == 0
        # enqueued_at is now(), the transaction's time: one value per batch written.
        batches = await conn.fetchval("SELECT count(DISTINCT enqueued_at) FROM processed_events")
        assert batches < len(ids) / 4
        # Marking again changes nothing: the first enqueued_at stands.
        first = await conn.fetchval(
            "SELECT min(enqueued_at) FROM processed_events WHERE external_id = $1", ids[0]
        )
        await marks.mark("stripe", ids[0])
        again = await conn.fetchval(
            "SELECT min(enqueued_at) FROM processed_events WHERE external_id = $1", ids[0]
        )
        assert again == first
    finally:
        await pool.close()


async def test_a_failed_batch_fails_every_waiter_and_the_next_batch_works(
    db_url: str, conn: asyncpg.Connection
) -> None:
    ids = await _receipts(conn, 10)
    pool = await db.create_pool(db_url, 2)
    marks = EnqueuedMarks(pool)
    await pool.close()  # the batch's acquire fails
    results = await asyncio.gather(*(marks.mark("stripe", i) for i in ids), return_exceptions=True)
    assert all(isinstance(r, asyncpg.InterfaceError) for r in results)
    assert (
        await conn.fetchval("SELECT count(*) FROM processed_events WHERE enqueued_at IS NOT NULL")
        == 0
    )

    pool = await db.create_pool(db_url, 2)
    try:
        marks = EnqueuedMarks(pool)
        await asyncio.gather(*(marks.mark("stripe", i) for i in ids))
        assert await _unmarked(conn) == 0
    finally:
        await pool.close()


async def test_a_cancelled_waiter_does_not_stop_the_others(
    db_url: str, conn: asyncpg.Connection
) -> None:
    ids = await _receipts(conn, 20)
    pool = await db.create_pool(db_url, 2)
    try:
        marks = EnqueuedMarks(pool)
        waiters = [asyncio.create_task(marks.mark("stripe", i)) for i in ids]
        await asyncio.sleep(0)  # every waiter is queued
        waiters[0].cancel()
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert isinstance(results[0], asyncio.CancelledError)
        assert all(r is None for r in results[1:])
        # The cancelled caller's mark was already in its batch; it is committed too.
        assert await _unmarked(conn) == 0
    finally:
        await pool.close()
