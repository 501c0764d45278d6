"""A model's reading of a message the rules could not read, validated field by field.

The model is asked for the fields the rules produce (``understanding.Understood``) under
a JSON schema, and every field is checked before it is used: dates in the future and
within 18 months, check-out after check-in, a party the inn can host, an option that was
shown. What fails is dropped, never corrected; the rest stands. The model decides no
price, availability or reply: its reading goes through the same quote as a typed one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

import orjson
from google.genai import types

from app.conversations.understanding import Understood
from app.inventory.stay import MAX_STAY_NIGHTS
from app.llm.masking import mask
from app.llm.model import Model

HORIZON_DAYS = 548  # 18 months
MAX_CHILD_AGE = 17
# What a model may say a message is about. Not "human" nor "cancel": those act on the
# conversation, and the rules read them reliably.
MODEL_INTENTS = ("greeting", "availability", "price", "confirm", "help", "unknown")
LANGUAGES = ("pt", "es", "en")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "intent": {"type": "string", "enum": list(MODEL_INTENTS)},
        "language": {"type": "string", "enum": list(LANGUAGES)},
        "checkin": {"type": "string", "format": "date"},
        "checkout": {"type": "string", "format": "date"},
        "adults": {"type": "integer", "minimum": 1},
        "children_ages": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "option": {"type": "integer", "minimum": 1},
    },
    "required": ["intent"],
}

INSTRUCTION = """\
You read one WhatsApp message a guest sent to a small inn (pousada) in Brazil, in
Portuguese, Spanish or English. Return only what the message itself states:
- intent: availability (asks for a stay or dates), price, confirm (chooses an option or
  says yes), greeting, help, or unknown;
- checkin and checkout as YYYY-MM-DD, resolving relative dates against today's date given
  below; omit them unless the message gives both an arrival and a length or a departure;
- adults, and children_ages (one integer per child whose age is said);
- option: the number of the option the guest chooses among those listed below, if any;
- language: pt, es or en.
Omit every field the message does not state. Never guess."""


@dataclass(frozen=True)
class ReadingContext:
    today: dt.date
    max_guests: int  # the most the whole inn hosts at once
    options: Sequence[str] = ()  # the options last shown, by number
    choices: Sequence[str] = ()  # the readings a pending question offered


async def read_message(model: Model, text: str, ctx: ReadingContext) -> Understood | None:
    """The model's validated reading, or None when it gave none."""
    lines = [f"Today is {ctx.today.isoformat()} ({ctx.today.strftime('%A')})."]
    if ctx.options:
        lines.append(
            "Options shown: " + "; ".join(f"{n}. {o}" for n, o in enumerate(ctx.options, 1))
        )
    if ctx.choices:
        lines.append("The inn asked which of: " + "; ".join(ctx.choices))
    lines.append("Message:\n" + mask(text))
    config = types.GenerateContentConfig(
        system_instruction=INSTRUCTION,
        temperature=0,
        response_mime_type="application/json",
        response_json_schema=SCHEMA,
    )
    answer = await model.generate("reading", ["\n".join(lines)], config)
    if answer is None:
        return None
    try:
        raw = orjson.loads(answer)
    except orjson.JSONDecodeError:
        return None
    return validated(raw, ctx) if isinstance(raw, dict) else None


def validated(raw: dict[str, Any], ctx: ReadingContext) -> Understood:
    """Each field as the rules would give it, or None where the model's fails a check."""
    intent = raw.get("intent")
    language = raw.get("language")
    checkin, checkout = _date(raw.get("checkin")), _date(raw.get("checkout"))
    horizon = ctx.today + dt.timedelta(days=HORIZON_DAYS)
    if not (
        checkin is not None
        and checkout is not None
        and ctx.today <= checkin <= horizon
        and 0 < (checkout - checkin).days <= MAX_STAY_NIGHTS
    ):
        checkin = checkout = None  # a stay is both dates, and both must hold
    adults, ages = raw.get("adults"), raw.get("children_ages") or []
    if not (_count(adults) and _ages(ages) and adults + len(ages) <= ctx.max_guests):
        adults, ages = None, None
    option = raw.get("option")
    if not (_count(option) and option <= len(ctx.options)):
        option = None
    return Understood(
        language=language if language in LANGUAGES else None,
        intent=intent if intent in MODEL_INTENTS else "unknown",
        checkin=checkin,
        checkout=checkout,
        adults=adults,
        children_ages=tuple(ages) if ages else None,
        nights=None,
        option=option,
        number=None,
    )


def _date(value: object) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _ages(value: object) -> TypeGuard[list[int]]:
    return isinstance(value, list) and all(
        isinstance(a, int) and not isinstance(a, bool) and 0 <= a <= MAX_CHILD_AGE for a in value
    )
