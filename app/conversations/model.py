"""The conversation's plain data: its states, what a task works on, and what a turn decides."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import asyncpg
import httpx
import stripe

from app.conversations import replies
from app.inventory.properties import Property
from app.llm.model import Model
from app.settings import Settings
from app.tasks.queue import TaskQueue

# new → collecting → quoted → awaiting_payment → booked; requote after a hold ended or a
# room sold out; human while the inn's staff have the conversation. A CHECK on
# conversations.state holds the same list (migration 0008).
State = Literal["new", "collecting", "quoted", "awaiting_payment", "booked", "requote", "human"]
STATES: tuple[State, ...] = get_args(State)


@dataclass(frozen=True)
class Services:
    pool: asyncpg.Pool
    queue: TaskQueue
    stripe: stripe.StripeClient
    settings: Settings
    model: Model | None = None  # UNDERSTANDING_MODEL: where the rules give up, voice notes
    graph: httpx.AsyncClient | None = None  # the WhatsApp Graph API (a voice note's media)


@dataclass(frozen=True)
class Conversation:
    id: uuid.UUID
    property: Property
    state: State
    language: str | None
    context: dict[str, Any]


@dataclass
class Turn:
    """What one message or event makes the bot say, and the state it leaves."""

    language: str
    state: State
    context: dict[str, Any]
    replies: list[str] = field(default_factory=list)
    # Facts for the inn's staff, written to the outbox with the turn: (event type, payload).
    facts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # By reply index: the template that reply goes out as outside WhatsApp's 24-hour window
    # ({"kind", "parameters"}); a reply without one is not sent then.
    templates: dict[int, dict[str, Any]] = field(default_factory=dict)
    # By reply index: its tap-to-choose form on Meta inside the window (Graph's interactive
    # "type" and "action"; see app/messaging/meta.py send_interactive).
    interactive: dict[int, dict[str, Any]] = field(default_factory=dict)

    def say(self, key: str, **fields: object) -> Turn:
        self.replies.append(replies.render(key, self.language, **fields))
        return self

    def say_with(self, interactive: dict[str, Any], key: str, **fields: object) -> Turn:
        """A reply the guest can answer by tapping (on Meta), or by typing as ever."""
        self.interactive[len(self.replies)] = interactive
        return self.say(key, **fields)

    def say_templated(self, key: str, parameters: list[str], **fields: object) -> Turn:
        """A reply that may also go out after 24 hours, as the inn's ``key`` template."""
        self.templates[len(self.replies)] = {"kind": key, "parameters": parameters}
        return self.say(key, **fields)
