"""The runbook's status in one place (its §9 daily routine): each check's value against its
threshold, with the severity a breach has (the runbook's SEV levels, docs/operations/).

The checks are data, STATUS_CHECKS. Most count the rows of a runbook SQL file (the same an
operator runs with psql), some only once a row is old enough; the backlog checks measure
how late each Cloud Tasks queue's soonest task is. ``ops status`` prints them, one line
each, and exits 1 when any is breached. The scheduled /tasks/ops/status task logs one
``invariant_check`` line per check — ERROR when the check is breached, INFO otherwise —
which the log-based metric ``hotelly_invariant_breaches`` counts and the alert policies in
deploy/monitoring/alerts page on, then one ``ops_status`` line with every check's value:
ERROR when any is breached.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import asyncpg

from app.ops.checks import OPS_SQL_DIR
from app.ops.tasks_backlog import Backlog, QueueBacklog
from app.tasks.catalog import QUEUES

log = logging.getLogger("app.ops")

# SEV0 stops the ship (overbooking), SEV1 pages (money or inventory stuck, work lost),
# SEV2 waits for working hours (the staff already know, or one guest is affected).
Severity = Literal["SEV0", "SEV1", "SEV2"]
Unit = Literal["findings", "seconds"]

# A task due five minutes ago and not yet run means its queue is not draining: a guest's
# confirmation or reply waits that long. Tasks normally start within a second of being due,
# and a task retrying after a failure is due at its next attempt, so it does not count.
BACKLOG_LATE_SECONDS = 300
# The status runs every 15 minutes: a payment caught while its task is retrying gets one
# run to turn into a reservation before it pages.
PAYMENT_GRACE = dt.timedelta(minutes=15)


def _every_row(row: dict[str, Any]) -> bool:
    return True


def _stale(row: dict[str, Any]) -> bool:
    # channel_health.sql lists every calendar; only the stale ones are findings (a single
    # failed fetch is retried by the next sync and changes nothing).
    return bool(row["stale"])


def _kind(kind: str) -> Callable[[dict[str, Any]], bool]:
    def is_kind(row: dict[str, Any]) -> bool:
        return bool(row["kind"] == kind)

    return is_kind


@dataclass(frozen=True)
class StatusCheck:
    name: str  # the `check` of its log lines, its metric label and its alert
    threshold: int  # findings tolerated, or seconds late; more is a breach
    severity: Severity
    playbook: str  # the row of docs/operations/README.md to follow
    what: str  # what the status screen says it measures
    next_step: str  # the command to run on a breach
    sql: str | None = None  # the docs/operations/sql file whose rows it counts …
    queue: str | None = None  # … or the Cloud Tasks queue whose lateness it measures
    is_finding: Callable[[dict[str, Any]], bool] = _every_row
    grace: dt.timedelta | None = None  # a row counts once its created_at is this old

    @property
    def unit(self) -> Unit:
        return "seconds" if self.queue else "findings"


STATUS_CHECKS = (
    StatusCheck(
        "reconcile",
        0,
        "SEV0",
        "Calendar drift (possible overbooking)",
        "nights whose counters disagree with holds, reservations and blocks",
        "ops reconcile",
        sql="reconcile_ari_vs_holds.sql",
    ),
    StatusCheck(
        "stuck-holds",
        0,
        "SEV1",
        "Stuck holds (active, past expiry)",
        "active holds more than 5 minutes past their expiry",
        "ops stuck-holds",
        sql="find_stuck_holds.sql",
    ),
    StatusCheck(
        "payments-without-reservation",
        0,
        "SEV1",
        "Payment without reservation",
        "payments without a reservation, older than 15 minutes",
        "ops payments-without-reservation",
        sql="payments_without_reservation.sql",
        grace=PAYMENT_GRACE,
    ),
    StatusCheck(
        "stale-receipts",
        0,
        "SEV1",
        "Events received but never processed (a lost task)",
        "provider events unfinished 10 minutes after their task was enqueued",
        "ops stale-receipts",
        sql="stale_receipts.sql",
    ),
    StatusCheck(
        "outbox-overdue",
        0,
        "SEV1",
        "Outbox rows that cannot be relayed",
        "outbox rows due more than 5 minutes ago and not relayed",
        "psql -f docs/operations/sql/outbox_overdue.sql",
        sql="outbox_overdue.sql",
    ),
    StatusCheck(
        "outbox-dead",
        0,
        "SEV1",
        "Outbox rows that cannot be relayed",
        "outbox rows set aside after their last failed attempt",
        "ops outbox-dead",
        sql="outbox_dead.sql",
    ),
    StatusCheck(
        "replies-queued",
        0,
        "SEV1",
        "Replies not reaching guests",
        "replies to guests queued for more than 5 minutes",
        "psql -f docs/operations/sql/replies_not_sent.sql",
        sql="replies_not_sent.sql",
        is_finding=_kind("queued"),
    ),
    StatusCheck(
        "replies-failed",
        0,
        "SEV2",
        "Replies not reaching guests",
        "replies to guests that failed in the last 24 hours",
        "psql -f docs/operations/sql/replies_not_sent.sql",
        sql="replies_not_sent.sql",
        is_finding=_kind("failed"),
    ),
    StatusCheck(
        "stale-calendars",
        0,
        "SEV1",
        "A channel calendar not syncing",
        "channel calendars not synced for 30 minutes",
        "ops channels",
        sql="channel_health.sql",
        is_finding=_stale,
    ),
    StatusCheck(
        "conflicts",
        0,
        "SEV2",
        "A channel booked nights we could not give it (a conflict)",
        "channel events that could not take their nights",
        "ops conflicts",
        sql="open_conflicts.sql",
    ),
    *(
        StatusCheck(
            f"backlog-{queue}",
            BACKLOG_LATE_SECONDS,
            "SEV1",
            "Tasks failing or not running",
            f"how late the {queue} queue's soonest due task is",
            "ops tasks",
            queue=queue,
        )
        for queue in QUEUES
    ),
    StatusCheck(
        "paused-providers",
        0,
        "SEV1",
        "Webhooks paused (containment)",
        "providers whose webhooks are paused",
        "ops resume stripe|whatsapp --apply",
        sql="paused_providers.sql",
    ),
)
# Read once: the files ship with the image (docs/operations/sql).
_SQL = {check.sql: (OPS_SQL_DIR / check.sql).read_text() for check in STATUS_CHECKS if check.sql}


@dataclass(frozen=True)
class CheckResult:
    check: StatusCheck
    found: int | None  # None: it could not be measured (``detail`` says why)
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def breached(self) -> bool:
        # A check that could not look cannot say all is well.
        return self.found is None or self.found > self.check.threshold


def _count(check: StatusCheck, rows: list[asyncpg.Record], now: dt.datetime) -> int:
    findings = [row for row in map(dict, rows) if check.is_finding(row)]
    if check.grace is not None:
        findings = [row for row in findings if row["created_at"] < now - check.grace]
    return len(findings)


def _queue_result(check: StatusCheck, backlog: Backlog, now: dt.datetime) -> CheckResult:
    assert check.queue is not None
    seen = backlog[check.queue]
    if not isinstance(seen, QueueBacklog):
        return CheckResult(check, None, {"queue": check.queue, "error": seen.reason})
    return CheckResult(check, seen.late_seconds(now), asdict(seen))


def backlog_checks(backlog: Backlog) -> list[CheckResult]:
    """The backlog checks alone, one per queue (``ops tasks``)."""
    now = dt.datetime.now(dt.UTC)
    return [_queue_result(check, backlog, now) for check in STATUS_CHECKS if check.queue]


async def check_status(conn: asyncpg.Connection, backlog: Backlog) -> list[CheckResult]:
    """Every check of STATUS_CHECKS, in its order: the database's on one read-only snapshot,
    the queues' from ``backlog`` (read before, so no transaction waits on Cloud Tasks)."""
    now = dt.datetime.now(dt.UTC)
    rows: dict[str, list[asyncpg.Record]] = {}
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        for sql, text in _SQL.items():
            rows[sql] = await conn.fetch(text)
    return [
        CheckResult(check, _count(check, rows[check.sql], now))
        if check.sql
        else _queue_result(check, backlog, now)
        for check in STATUS_CHECKS
    ]


def log_status(results: list[CheckResult]) -> None:
    """One ``invariant_check`` line per check, then one ``ops_status`` line with them all:
    names and counts, never the findings' rows (the ops commands print those). ``sev``, not
    ``severity``: that key is the line's own log level in Cloud Logging."""
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
    breached = [result.check.name for result in results if result.breached]
    log.log(
        logging.ERROR if breached else logging.INFO,
        "ops_status",
        extra={"breached": breached, "checks": {r.check.name: r.found for r in results}},
    )


def _value(result: CheckResult) -> str:
    if result.found is None:
        return "unknown"
    return f"{result.found} s late" if result.check.unit == "seconds" else str(result.found)


def _queue_detail(seen: dict[str, Any]) -> str:
    soonest = seen["oldest_due"].isoformat(timespec="seconds") if seen["oldest_due"] else "-"
    return (
        f" ({seen['state']}, {seen['tasks']} queued, soonest due {soonest}, "
        f"{seen['executed_last_minute']} run in the last minute, {seen['dispatching']} running)"
    )


def screen(results: list[CheckResult]) -> list[str]:
    """The human lines of ``ops status``: each check's value, threshold and SEV, and for a
    breach the command to run next."""
    lines = []
    for result in results:
        check = result.check
        unit = " s" if check.unit == "seconds" else ""
        line = (
            f"{'BREACHED' if result.breached else 'ok':<9}{check.name:<30}"
            f"{_value(result):>10}  (threshold {check.threshold}{unit}, {check.severity})  "
            f"{check.what}"
        )
        if "error" in result.detail:
            line += f": {result.detail['error']}"
        elif check.queue:
            line += _queue_detail(result.detail)
        if result.breached:
            line += f"  → {check.next_step}"
        lines.append(line)
    return lines


def summary(results: list[CheckResult]) -> dict[str, Any]:
    """The machine-readable status: what is breached and every check's value."""
    breached = [result.check.name for result in results if result.breached]
    return {
        "status": "breached" if breached else "ok",
        "breached": breached,
        "checks": [
            {
                "check": result.check.name,
                "found": result.found,
                "threshold": result.check.threshold,
                "unit": result.check.unit,
                "sev": result.check.severity,
                "breached": result.breached,
                **result.detail,
            }
            for result in results
        ],
    }
