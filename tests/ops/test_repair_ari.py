"""`ops repair-ari` (runbook §7.5): counters broken by hand come back to their facts exactly,
also while holds are created and expired on the same nights; facts over capacity are
refused, naming the nights, with nothing changed."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import asyncpg
import orjson
import pytest

from app.backoffice.blocks import block_units
from app.backoffice.runner import Scope
from app.errors import AppError
from app.inventory.holds import create_hold, expire_due_holds, expire_hold
from app.ops.checks import run_check
from app.ops.repair_ari import FactsExceedCapacity, repair_ari
from tests.inventory.conftest import Calendar, make_calendar
from tests.inventory.test_concurrency import TTL, backdate, pay, race, request, stay_at
from tests.support import app_env, connections, run_cli


@pytest.fixture
async def cal(conn: asyncpg.Connection) -> Calendar:
    """'std' (10 units) and 'fam' (2 units) for 10 nights."""
    return await make_calendar(conn, [("std", 2, 10, 30000), ("fam", 4, 2, 50000)], days=10)


def day(cal: Calendar, n: int) -> dt.date:
    return cal.start + dt.timedelta(days=n)


async def counters(conn: asyncpg.Connection, cal: Calendar) -> list[tuple[Any, ...]]:
    rows = await conn.fetch(
        "SELECT room_type_id, date, inv_held, inv_booked, inv_blocked FROM ari_days"
        " WHERE property_id = $1 ORDER BY room_type_id, date",
        cal.property.id,
    )
    return [tuple(row) for row in rows]


async def set_night(
    conn: asyncpg.Connection,
    cal: Calendar,
    room: str,
    n: int,
    *,
    inv_total: int | None = None,
    inv_held: int | None = None,
    inv_booked: int | None = None,
    inv_blocked: int | None = None,
) -> None:
    """Change a night's counters by hand, as a manual fix that left no trace would."""
    await conn.execute(
        "UPDATE ari_days SET inv_total = coalesce($3, inv_total),"
        " inv_held = coalesce($4, inv_held), inv_booked = coalesce($5, inv_booked),"
        " inv_blocked = coalesce($6, inv_blocked)"
        " WHERE room_type_id = $1 AND date = $2",
        cal.room_type_ids[room],
        day(cal, n),
        inv_total,
        inv_held,
        inv_booked,
        inv_blocked,
    )


def change(
    cal: Calendar, room: str, n: int, counter: str, was: int, should_be: int
) -> dict[str, Any]:
    return {
        "room_type": room,
        "date": day(cal, n),
        "counter": counter,
        "was": was,
        "should_be": should_be,
    }


def in_lock_order(cal: Calendar, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """As the repair lists them: by room type id, then date."""
    return sorted(changes, key=lambda c: (cal.room_type_ids[c["room_type"]], c["date"]))


async def test_counters_broken_by_hand_are_repaired_exactly_once_audited(
    conn: asyncpg.Connection, cal: Calendar
) -> None:
    """A held, a booked and a blocked counter each off by hand (one night each, up and
    down): the preview lists exactly those four (was → should be) and changes nothing;
    applied, they equal their facts (reconcile clean) with one audit row; run again, the
    calendar is clean and nothing more is written."""
    await create_hold(conn, request(cal, stay_at(cal, 0, 3), {"std": 1}), ttl_seconds=TTL)
    booked = await create_hold(conn, request(cal, stay_at(cal, 1, 3), {"std": 1}), ttl_seconds=TTL)
    await pay(conn, booked)
    scope = Scope(cal.property)
    await block_units(conn, scope, "fam", day(cal, 2), day(cal, 5), 1, execute=True)
    await set_night(conn, cal, "std", 0, inv_held=4)  # facts: 1
    await set_night(conn, cal, "std", 2, inv_booked=0)  # facts: 1
    await set_night(conn, cal, "fam", 3, inv_blocked=2)  # facts: 1
    await set_night(conn, cal, "fam", 6, inv_held=1)  # facts: 0
    shown = in_lock_order(
        cal,
        [
            change(cal, "std", 0, "inv_held", 4, 1),
            change(cal, "std", 2, "inv_booked", 0, 1),
            change(cal, "fam", 3, "inv_blocked", 2, 1),
            change(cal, "fam", 6, "inv_held", 1, 0),
        ],
    )
    broken = await counters(conn, cal)

    preview = await repair_ari(conn, scope, apply=False)
    assert preview["outcome"] == "preview"
    assert preview["changes"] == shown and preview["nights"] == 4
    assert await counters(conn, cal) == broken
    assert len(await run_check(conn, "reconcile")) == 4

    done = await repair_ari(conn, scope, apply=True)
    assert done["outcome"] == "repaired" and done["changes"] == shown
    assert await run_check(conn, "reconcile") == []
    audit = await conn.fetch(
        "SELECT actor, command, result FROM audit_log WHERE command = $1", "ari.repair"
    )
    assert [(a["actor"], a["command"]) for a in audit] == [("cli", "ari.repair")]
    assert audit[0]["result"]["outcome"] == "repaired" and len(audit[0]["result"]["changes"]) == 4

    again = await repair_ari(conn, scope, apply=True)
    assert again["outcome"] == "clean" and again["changes"] == []
    assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE command = 'ari.repair'") == 1


async def test_repair_racing_holds_created_and_expired_on_the_same_nights_leaves_them_exact(
    db_url: str, conn: asyncpg.Connection, cal: Calendar
) -> None:
    """N = 24 create_hold of one 'std' unit for nights 0-2, 4 expire_hold and 2 sweeps of
    due holds on those nights, and 3 `repair-ari --apply`, all at once on 33 connections,
    with the counters of those nights inflated by hand beforehand. The repair locks the
    nights in create_hold's order and counts only once it holds them, so whatever
    interleaving happens: no deadlock, no error but a refused hold, at least one repair
    that changed the counters, and every counter equal to its facts afterwards."""
    standing = [
        await create_hold(conn, request(cal, stay_at(cal, 0, 3), {"std": 1}), ttl_seconds=TTL)
        for _ in range(6)
    ]
    due = [hold.id for hold in standing[:4]]
    await backdate(conn, *due)
    await set_night(conn, cal, "std", 0, inv_held=8)  # facts: 6
    await set_night(conn, cal, "std", 1, inv_held=7)
    await set_night(conn, cal, "std", 2, inv_blocked=1)  # facts: 0
    scope = Scope(cal.property)

    async with connections(db_url, 33) as conns:
        jobs = [
            *(
                create_hold(c, request(cal, stay_at(cal, 0, 3), {"std": 1}), ttl_seconds=TTL)
                for c in conns[:24]
            ),
            *(expire_hold(c, hold_id) for c, hold_id in zip(conns[24:28], due, strict=True)),
            *(expire_due_holds(c, 10) for c in conns[28:30]),
            *(repair_ari(c, scope, apply=True) for c in conns[30:33]),
        ]
        results = await race(*jobs)

    assert not any(isinstance(r, AppError) for r in results[24:]), results[24:]
    refused = [type(r).__name__ for r in results[:24] if isinstance(r, AppError)]
    assert set(refused) <= {"NothingAvailable"}, refused
    assert "repaired" in [r["outcome"] for r in results[30:]]
    assert await run_check(conn, "reconcile") == []
    assert (await repair_ari(conn, scope, apply=False))["outcome"] == "clean"


async def test_facts_over_capacity_are_refused_naming_the_nights_and_change_nothing(
    db_url: str, conn: asyncpg.Connection, cal: Calendar
) -> None:
    """Both 'fam' units held on night 1, then its total lowered to 1 by hand: the facts
    overbook it. The repair (preview or applied, and the CLI: exit 1, one JSON line, no
    traceback) refuses naming that night and changes nothing, not even another night's
    fixable drift, and writes no audit row. Once a person puts the total back, the CLI
    repairs the drift."""
    await create_hold(conn, request(cal, stay_at(cal, 1, 1, guests=2), {"fam": 2}), ttl_seconds=TTL)
    await set_night(conn, cal, "fam", 1, inv_total=1, inv_held=1)
    await set_night(conn, cal, "std", 4, inv_held=2)
    broken = await counters(conn, cal)
    scope = Scope(cal.property)
    night = {
        "room_type": "fam",
        "date": day(cal, 1).isoformat(),
        "inv_total": 1,
        "held": 2,
        "booked": 0,
        "blocked": 0,
    }
    for apply in (False, True):
        with pytest.raises(FactsExceedCapacity) as refused:
            await repair_ari(conn, scope, apply=apply)
        assert refused.value.fields == {"nights": [night]}
    assert await counters(conn, cal) == broken

    env = app_env(DATABASE_URL=db_url)
    args = ("ops", "repair-ari", "--property", cal.property.code, "--apply")
    cli = await asyncio.to_thread(run_cli, *args, env=env)
    assert cli.returncode == 1 and "Traceback" not in cli.stderr
    assert len(cli.stdout.splitlines()) == 1
    assert orjson.loads(cli.stdout) == {
        "error": "facts_exceed_capacity",
        "message": "facts exceed capacity on 1 night(s): nothing changed",
        "nights": [night],
    }
    assert await counters(conn, cal) == broken
    assert await conn.fetchval("SELECT count(*) FROM audit_log") == 0

    await set_night(conn, cal, "fam", 1, inv_total=2)  # the person's fix
    cli = await asyncio.to_thread(run_cli, *args, env=env)
    assert cli.returncode == 0, cli.stderr
    lines = [orjson.loads(line) for line in cli.stdout.splitlines()]
    fixed = [change(cal, "fam", 1, "inv_held", 1, 2), change(cal, "std", 4, "inv_held", 2, 0)]
    assert lines[:-1] == orjson.loads(orjson.dumps(in_lock_order(cal, fixed)))
    assert lines[-1] == {
        "command": "ari.repair",
        "property": cal.property.code,
        "outcome": "repaired",
        "nights": 2,
    }
    assert await run_check(conn, "reconcile") == []
