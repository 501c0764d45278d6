"""Every kind of Cloud Task, declared once: its queue, its worker path, how its tasks are
named and, for the ones Cloud Scheduler runs, how often.

The worker's route table, the outbox relay, reprocess and the receipts' re-drive, the
local scheduler of `make run` and the deploy definitions all read this table (a test holds
``deploy/`` to it).

Task names are built here and only here. Cloud Tasks allows ``[A-Za-z0-9_-]`` (up to 500
characters) and advises against long sequential prefixes, so a key that is not a safe,
short name, or any key of a kind with sequential keys, is hashed: no id can make an illegal
name, and the same key always makes the same name (a second enqueue is a no-op).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

QUEUES = ("webhooks", "holds", "messages", "default")
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


@dataclass(frozen=True)
class TaskKind:
    path: str
    queue: str
    prefix: str
    # Cloud Scheduler's cron, for a task the scheduler runs (None: enqueued by the app).
    schedule: str | None = None
    # Keys are sequential (outbox ids): always hash them, as Google advises.
    hash_keys: bool = False

    def task_name(self, key: str, generation: int = 0) -> str:
        """The task's name for ``key``; a re-enqueue of a lost task takes generation n > 0
        (Cloud Tasks refuses a name for about an hour after its task ran or was deleted)."""
        prefix = f"{self.prefix}-g{generation}" if generation else self.prefix
        if self.hash_keys or not _SAFE_KEY.match(key):
            key = hashlib.sha256(key.encode()).hexdigest()[:32]
        return f"{prefix}-{key}"


STRIPE_EVENT = TaskKind("/tasks/stripe/event", "webhooks", "stripe")
WHATSAPP_MESSAGE = TaskKind("/tasks/whatsapp/message", "messages", "wa")
HOLD_EXPIRE = TaskKind("/tasks/holds/expire", "holds", "expire")
WHATSAPP_SEND = TaskKind("/tasks/whatsapp/send", "messages", "send")
# A hold has each fact at most once: keyed by (hold, event type).
CONVERSATION_NOTIFY = TaskKind("/tasks/conversations/notify", "messages", "notify")
STAFF_NOTIFY = TaskKind("/tasks/staff/notify", "messages", "staff", hash_keys=True)
HOLDS_SWEEP = TaskKind("/tasks/holds/sweep", "holds", "sweep", schedule="*/2 * * * *")
OUTBOX_RELAY = TaskKind("/tasks/outbox/relay", "default", "relay", schedule="* * * * *")
RECEIPTS_REDRIVE = TaskKind("/tasks/receipts/redrive", "default", "redrive", schedule="*/5 * * * *")
# One calendar's import, and the schedule that enqueues one per calendar and time slot.
CHANNEL_SYNC = TaskKind("/tasks/channels/sync", "default", "sync")
CHANNELS_SYNC_ALL = TaskKind(
    "/tasks/channels/sync-all", "default", "syncall", schedule="*/15 * * * *"
)
# One of our refunds made at Stripe, keyed by the refund's id.
REFUND_SEND = TaskKind("/tasks/payments/refund", "default", "refund")
# The runbook's invariant checks, logged for the alerts: as often as a calendar syncs.
OPS_STATUS = TaskKind("/tasks/ops/status", "default", "status", schedule="*/15 * * * *")
# Old rows removed and idle guests erased (app/ops/retention.py): daily, at the quiet hour
# before the inns' mornings (04:30 UTC is 01:30 in Brazil).
RETENTION = TaskKind("/tasks/ops/retention", "default", "retention", schedule="30 4 * * *")
# The console: a login code sent to a staff member, keyed by its request; a command the
# console recorded, keyed by its id.
CONSOLE_LOGIN_CODE = TaskKind("/tasks/console/login-code", "messages", "login")
CONSOLE_COMMAND = TaskKind("/tasks/console/command", "default", "console")

CATALOG = (
    STRIPE_EVENT,
    WHATSAPP_MESSAGE,
    HOLD_EXPIRE,
    HOLDS_SWEEP,
    OUTBOX_RELAY,
    RECEIPTS_REDRIVE,
    CHANNEL_SYNC,
    CHANNELS_SYNC_ALL,
    WHATSAPP_SEND,
    CONVERSATION_NOTIFY,
    STAFF_NOTIFY,
    REFUND_SEND,
    OPS_STATUS,
    RETENTION,
    CONSOLE_LOGIN_CODE,
    CONSOLE_COMMAND,
)
# The task that processes a receipt of each provider event source.
RECEIPT_TASKS = {"stripe": STRIPE_EVENT, "whatsapp": WHATSAPP_MESSAGE}


def scheduled() -> tuple[TaskKind, ...]:
    return tuple(kind for kind in CATALOG if kind.schedule is not None)
