"""Query plans of the hot paths: the sweep and the ordered ARI lock walk their indexes.

The data is big enough that a sequential scan would be a real choice for the planner:
several room types x 365 nights, thousands of closed holds with their nights, a few
hundred active ones (some due), then ANALYZE. The queries keep the shape they have in
sql/migrations/0002_inventory.sql. PL/pgSQL runs them as custom plans first and may switch
to a generic one, so both are checked; a last test captures the plans the real functions
run, with auto_explain.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from app.inventory.holds import create_hold, expire_due_holds
from app.inventory.stay import Stay
from tests.inventory.conftest import Calendar, make_calendar
from tests.support import hold_request

ROOM_TYPES = 8
DAYS = 365
CLOSED_HOLDS = 5000
ACTIVE_HOLDS = 300
DUE_HOLDS = 60

SWEEP_SELECT = """
SELECT h.id FROM holds h
WHERE h.status = 'active' AND h.expires_at <= now()
ORDER BY h.expires_at
LIMIT {limit}
FOR UPDATE SKIP LOCKED
"""

ARI_LOCK = """
SELECT a.id FROM ari_days a
WHERE a.room_type_id = $1 AND a.date >= $2 AND a.date < $3
ORDER BY a.room_type_id, a.date
FOR NO KEY UPDATE
"""

# The claim's lock as create_hold writes it: every room type of the request at once.
ARI_LOCK_AS_IN_CREATE_HOLD = """
SELECT a.id FROM ari_days a
WHERE a.room_type_id = ANY ($1::bigint[]) AND cardinality($2::integer[]) > 0
  AND a.date >= $3 AND a.date < $4
ORDER BY a.room_type_id, a.date
FOR NO KEY UPDATE OF a
"""


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a JSON plan tree, depth first."""
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def index_names(plan: dict[str, Any]) -> set[str]:
    return {node["Index Name"] for node in nodes(plan) if "Index Name" in node}


def seq_scanned(plan: dict[str, Any]) -> set[str]:
    return {node["Relation Name"] for node in nodes(plan) if node["Node Type"] == "Seq Scan"}


def subplan(plan: dict[str, Any], name: str) -> dict[str, Any]:
    """The subtree PostgreSQL names ``name`` (e.g. 'CTE due')."""
    (found,) = [node for node in nodes(plan) if node.get("Subplan Name") == name]
    return found


def node_types(plan: dict[str, Any]) -> list[str]:
    return [node["Node Type"] for node in nodes(plan)]


async def explain(conn: asyncpg.Connection, query: str, *args: object) -> dict[str, Any]:
    """The planner's plan for ``query`` with these values (a custom plan)."""
    raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {query}", *args)
    return dict(json.loads(raw)[0]["Plan"])


async def explain_generic(
    conn: asyncpg.Connection, query: str, types: str, values: str
) -> dict[str, Any]:
    """The generic plan PL/pgSQL may cache for ``query``: parameters are unknown at plan time."""
    name = f"plan_{uuid.uuid4().hex[:8]}"
    await conn.execute(f"PREPARE {name} ({types}) AS {query}")
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE {name} ({values})")
    finally:
        await conn.execute(f"DEALLOCATE {name}")
    return dict(json.loads(raw)[0]["Plan"])


def _stay(cal: Calendar, first: int, nights: int) -> Stay:
    checkin = cal.start + dt.timedelta(days=first)
    return Stay(
        checkin, checkin + dt.timedelta(days=nights), 2
    )  # two guests: one in each of two units


@pytest.fixture
async def busy_calendar(conn: asyncpg.Connection) -> Calendar:
    """8 room types x 365 nights; 5000 closed holds with nights, 300 active (60 due); ANALYZE."""
    cal = await make_calendar(
        conn, [(f"room{i}", 2, 50, 20000 + i) for i in range(ROOM_TYPES)], days=DAYS
    )
    room_ids = sorted(cal.room_type_ids.values())
    # Closed holds keep their nights (history), which no counter counts any more.
    await conn.execute(
        """
        WITH closed AS (
            INSERT INTO holds (property_id, status, checkin, checkout, guests, total_cents,
                               currency, expires_at, create_idempotency_key,
                               request_fingerprint, closed_at, cancel_reason)
            SELECT $1, CASE WHEN g % 3 = 0 THEN 'cancelled' ELSE 'expired' END,
                   $2::date + g % 360, $2::date + g % 360 + 2, 2, 40000, 'BRL',
                   now() - interval '30 days' + g * interval '1 minute', 'closed-' || g, 'fp',
                   now() - interval '1 day', 'history'
            FROM generate_series(1, $3::integer) AS g
            RETURNING id, checkin
        )
        INSERT INTO hold_nights (hold_id, room_type_id, date, qty)
        SELECT c.id, ($4::bigint[])[1 + abs(hashtext(c.id::text)) % cardinality($4::bigint[])],
               c.checkin + n, 1
        FROM closed c, generate_series(0, 1) AS n
        """,
        cal.property.id,
        cal.start,
        CLOSED_HOLDS,
        room_ids,
    )
    active = []
    for i in range(ACTIVE_HOLDS):
        rooms = ((room_ids[i % ROOM_TYPES], 1), (room_ids[(i + 3) % ROOM_TYPES], 1))
        request = hold_request(cal.property.id, _stay(cal, i % 360, 2), rooms, f"active-{i}")
        active.append(await create_hold(conn, request, ttl_seconds=900 + i))
    await conn.execute(
        "UPDATE holds SET expires_at = now() - interval '1 minute' WHERE id = ANY($1::uuid[])",
        [hold.id for hold in active[:DUE_HOLDS]],
    )
    await conn.execute("ANALYZE")
    return cal


@pytest.mark.parametrize("plan", ["custom", "generic"])
async def test_sweep_selection_walks_partial_expiry_index(
    conn: asyncpg.Connection, busy_calendar: Calendar, plan: str
) -> None:
    """The sweep's selection of due holds reads holds_active_expires_at_idx in expires_at
    order (no sort, no sequential scan of holds), with LIMIT 100 known or as a parameter."""
    if plan == "custom":
        tree = await explain(conn, SWEEP_SELECT.format(limit=100))
    else:
        tree = await explain_generic(conn, SWEEP_SELECT.format(limit="$1"), "integer", "100")

    assert "holds_active_expires_at_idx" in index_names(tree), tree
    assert "holds" not in seq_scanned(tree), tree
    assert "Sort" not in node_types(tree), tree
    assert node_types(tree)[:2] == ["Limit", "LockRows"], tree


@pytest.mark.parametrize("plan", ["custom", "generic"])
async def test_ari_lock_walks_room_type_date_key(
    conn: asyncpg.Connection, busy_calendar: Calendar, plan: str
) -> None:
    """The ordered lock of one room type's nights reads ari_days_room_type_id_date_key and
    locks rows as they come out in (room type, date) order: no sequential scan of ari_days."""
    room_id = busy_calendar.room_type_ids["room2"]
    stay = _stay(busy_calendar, 100, 3)
    if plan == "custom":
        tree = await explain(conn, ARI_LOCK, room_id, stay.checkin, stay.checkout)
    else:
        values = f"{room_id}, '{stay.checkin}', '{stay.checkout}'"
        tree = await explain_generic(conn, ARI_LOCK, "bigint, date, date", values)

    assert "ari_days_room_type_id_date_key" in index_names(tree), tree
    assert "ari_days" not in seq_scanned(tree), tree
    assert node_types(tree)[0] == "LockRows", tree


async def test_multi_room_ari_lock_walks_room_type_date_key(
    conn: asyncpg.Connection, busy_calendar: Calendar
) -> None:
    """create_hold's lock over several room types at once (a join with unnest) reaches each
    room type's nights through ari_days_room_type_id_date_key, then sorts and locks them."""
    ids = busy_calendar.room_type_ids
    stay = _stay(busy_calendar, 200, 4)
    tree = await explain(
        conn,
        ARI_LOCK_AS_IN_CREATE_HOLD,
        [ids["room1"], ids["room5"]],
        [1, 2],
        stay.checkin,
        stay.checkout,
    )

    assert "ari_days_room_type_id_date_key" in index_names(tree), tree
    assert "ari_days" not in seq_scanned(tree), tree
    assert node_types(tree)[0] == "LockRows", tree


async def test_real_functions_use_the_indexes(
    conn: asyncpg.Connection, busy_calendar: Calendar
) -> None:
    """The plans create_hold and expire_due_holds really run (auto_explain of their nested
    statements, over more calls than PL/pgSQL's five custom plans) lock ARI nights through
    ari_days_room_type_id_date_key and select due holds through holds_active_expires_at_idx."""
    try:
        await conn.execute("LOAD 'auto_explain'")
    except (asyncpg.UndefinedFileError, asyncpg.InsufficientPrivilegeError) as exc:
        pytest.skip(f"auto_explain is not available on this server: {exc}")
    plans: list[dict[str, Any]] = []

    def collect(_: object, message: asyncpg.PostgresLogMessage) -> None:
        text = message.message or ""
        if "plan:\n" in text:
            plans.append(json.loads(text.split("plan:\n", 1)[1]))

    conn.add_log_listener(collect)
    try:
        await conn.execute(
            "SET auto_explain.log_min_duration = 0;"
            " SET auto_explain.log_nested_statements = on;"
            " SET auto_explain.log_format = json;"
            " SET auto_explain.log_level = notice"
        )
        ids = busy_calendar.room_type_ids
        for i in range(8):
            rooms = ((ids["room0"], 1), (ids["room6"], 1))
            request = hold_request(
                busy_calendar.property.id, _stay(busy_calendar, 300 + i, 3), rooms, f"plan-{i}"
            )
            await create_hold(conn, request, ttl_seconds=900)
        swept = await expire_due_holds(conn, 100)
        await conn.execute("SET auto_explain.log_min_duration = -1")
    finally:
        conn.remove_log_listener(collect)
    assert len(swept) == DUE_HOLDS

    def statements(*fragments: str) -> list[dict[str, Any]]:
        return [p["Plan"] for p in plans if all(f in p.get("Query Text", "") for f in fragments)]

    claims = statements("v_room_type_ids", "FOR NO KEY UPDATE OF a")
    assert len(claims) == 8, [p.get("Query Text") for p in plans]
    for tree in claims:
        assert "ari_days_room_type_id_date_key" in index_names(tree), tree
    # create_hold's reads that validate and price the request, too: none scans the calendar.
    reads = statements("ari_days", "p_checkin")
    assert len(reads) > len(claims)
    for tree in reads:
        assert "ari_days" not in seq_scanned(tree), tree
    (selection,) = statements("FOR UPDATE SKIP LOCKED")
    assert "holds_active_expires_at_idx" in index_names(selection), selection
    assert "holds" not in seq_scanned(selection), selection
    assert "Sort" not in node_types(selection), selection
