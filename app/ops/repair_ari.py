"""`ops repair-ari` (runbook §7.5): set a property's calendar counters to what its facts say.

One transaction, READ COMMITTED: it locks every ``ari_days`` row of the property in (room
type, date) order — the order create_hold and the releases lock theirs in, so it waits
behind them and never deadlocks with them — and only then, in a statement of its own,
counts the facts (nights of active holds, confirmed reservations, active blocks). A
transaction that changed those nights has committed by then, facts and counters together;
one still to come waits for the locks, and its facts are not yet visible: either way the
counters written match the facts left behind. Without ``apply`` the same reads run and the
transaction rolls back.

When the facts themselves take more than a night's ``inv_total`` (an overbooking), no
counter can be right: the repair refuses, naming those nights, and changes nothing. That is
for a person to settle (cancel, move a guest), not for a counter to hide.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import asyncpg

from app.backoffice.runner import Scope, audit
from app.db import QUERIES
from app.errors import Busy, Conflict

COMMAND = "ari.repair"
COUNTERS = (("inv_held", "held"), ("inv_booked", "booked"), ("inv_blocked", "blocked"))


class FactsExceedCapacity(Conflict):
    """The holds, reservations and blocks of some nights exceed their units: an overbooking
    for a person to settle; nothing was changed."""

    code = "facts_exceed_capacity"

    def __init__(self, nights: list[dict[str, Any]]) -> None:
        super().__init__(f"facts exceed capacity on {len(nights)} night(s): nothing changed")
        self.nights = nights

    @property
    def fields(self) -> dict[str, object]:
        return {"nights": self.nights}


@dataclass(frozen=True)
class Change:
    room_type: str
    date: dt.date
    counter: str
    was: int
    should_be: int


def _changes(row: asyncpg.Record) -> list[Change]:
    return [
        Change(row["room_type"], row["date"], counter, row[counter], row[fact])
        for counter, fact in COUNTERS
        if row[counter] != row[fact]
    ]


def _overbooked(row: asyncpg.Record) -> dict[str, Any] | None:
    facts = row["held"] + row["booked"] + row["blocked"]
    if facts <= row["inv_total"]:
        return None
    return {
        "room_type": row["room_type"],
        "date": row["date"].isoformat(),
        "inv_total": row["inv_total"],
        **{fact: row[fact] for _, fact in COUNTERS},
    }


async def _repair(conn: asyncpg.Connection, scope: Scope, apply: bool) -> list[Change]:
    await conn.execute(QUERIES["repair_ari_lock_timeout"])
    await conn.fetchval(QUERIES["repair_ari_lock"], scope.property.id)
    rows = await conn.fetch(QUERIES["repair_ari_facts"], scope.property.id)
    over = [night for row in rows if (night := _overbooked(row)) is not None]
    if over:
        raise FactsExceedCapacity(over)
    changes = [change for row in rows for change in _changes(row)]
    if apply and rows:
        await conn.execute(
            QUERIES["repair_ari_update"],
            [row["id"] for row in rows],
            [row["held"] for row in rows],
            [row["booked"] for row in rows],
            [row["blocked"] for row in rows],
        )
        await audit(conn, scope, COMMAND, {}, {"outcome": "repaired", **_shown(changes)})
    return changes


def _shown(changes: list[Change]) -> dict[str, Any]:
    return {
        "nights": len({(c.room_type, c.date) for c in changes}),
        "changes": [vars(c) for c in changes],
    }


async def repair_ari(conn: asyncpg.Connection, scope: Scope, *, apply: bool) -> dict[str, Any]:
    """What the repair changes (``apply``: changed, with its audit row) on the property's
    calendar: each counter that differs from its facts, was → should be."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        changes = await _repair(conn, scope, apply)
    except (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError):
        await transaction.rollback()
        raise Busy("the calendar is busy: nothing changed, run it again") from None
    except BaseException:
        await transaction.rollback()
        raise
    if apply:
        await transaction.commit()
    else:
        await transaction.rollback()
    outcome = ("repaired" if apply else "preview") if changes else "clean"
    return {
        "command": COMMAND,
        "property": scope.property.code,
        "outcome": outcome,
        **_shown(changes),
    }
