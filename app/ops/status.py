"""The runbook's invariant checks as one status: each check's findings against its threshold,
with the severity a breach has (the runbook's SEV levels, docs/operations/README.md).

The scheduled /tasks/ops/status task logs it as one ``invariant_check`` line per check —
ERROR when the check is breached, INFO otherwise — which the log-based metric
``hotelly_invariant_breaches`` counts and the alert policies in deploy/monitoring/alerts
page on. The table is data, so a status screen can show the same checks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from app.ops.checks import run_check

log = logging.getLogger("app.ops")

# SEV0 stops the ship (overbooking), SEV1 pages (money or inventory stuck, work lost),
# SEV2 waits for working hours (the staff already know).
Severity = Literal["SEV0", "SEV1", "SEV2"]


def _every_row(row: dict[str, Any]) -> bool:
    return True


def _stale(row: dict[str, Any]) -> bool:
    # channel_health.sql lists every calendar; only the stale ones are findings (a single
    # failed fetch is retried by the next sync and changes nothing).
    return bool(row["stale"])


@dataclass(frozen=True)
class StatusCheck:
    name: str  # the `check` of its log lines, its metric label and its alert
    query: str  # the runbook check it runs (app.ops.checks.CHECKS)
    threshold: int  # findings tolerated; more is a breach
    severity: Severity
    playbook: str  # the row of docs/operations/README.md to follow
    is_finding: Callable[[dict[str, Any]], bool] = _every_row


STATUS_CHECKS = (
    StatusCheck("reconcile", "reconcile", 0, "SEV0", "Calendar drift (possible overbooking)"),
    StatusCheck("stuck-holds", "stuck-holds", 0, "SEV1", "Stuck holds (active, past expiry)"),
    StatusCheck(
        "payments-without-reservation",
        "payments-without-reservation",
        0,
        "SEV1",
        "Payment without reservation",
    ),
    StatusCheck(
        "stale-receipts",
        "stale-receipts",
        0,
        "SEV1",
        "Events received but never processed (a lost task)",
    ),
    StatusCheck("outbox-dead", "outbox-dead", 0, "SEV1", "Outbox rows that cannot be relayed"),
    StatusCheck(
        "conflicts",
        "conflicts",
        0,
        "SEV2",
        "A channel booked nights we could not give it (a conflict)",
    ),
    StatusCheck("stale-calendars", "channels", 0, "SEV1", "A channel calendar not syncing", _stale),
)


@dataclass(frozen=True)
class CheckResult:
    check: StatusCheck
    found: int

    @property
    def breached(self) -> bool:
        return self.found > self.check.threshold


async def check_status(conn: asyncpg.Connection) -> list[CheckResult]:
    """Every check of STATUS_CHECKS, on one snapshot of the database, read only."""
    results = []
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        for check in STATUS_CHECKS:
            rows = await run_check(conn, check.query)
            results.append(CheckResult(check, sum(1 for row in rows if check.is_finding(row))))
    return results


def log_status(results: list[CheckResult]) -> None:
    """One ``invariant_check`` line per check: its name and counts, never the findings'
    rows (the ops commands print those). ``sev``, not ``severity``: that key is the line's
    own log level in Cloud Logging."""
    for result in results:
        log.log(
            logging.ERROR if result.breached else logging.INFO,
            "invariant_check",
            extra={
                "check": result.check.name,
                "found": result.found,
                "threshold": result.check.threshold,
                "sev": result.check.severity,
            },
        )
