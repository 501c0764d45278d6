"""Tap to choose (Meta): the interactive form a reply goes out with, and the id a tap
sends back.

Ids carry what the tap is about, so a tap is read by its id, never by its title:
``q:<quote>:<n>`` the n-th option of a quote, ``c:<quote>:<n>|other`` a reading a question
offered (or other dates), ``h:<hold id>:cancel`` cancelling that hold. ``<quote>`` is the
id of the turn that showed the options (``context["quote_id"]``): a tap on an earlier
list does not match it, and gets the current options instead of booking the old one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.conversations import replies

# Graph's limits: 10 rows, a row's title 24 characters and description 72, a button's
# title 20, at most 3 buttons.
MAX_ROWS = 10
_TAP = re.compile(r"^([qch]):([0-9a-f-]{10,36}):(\d{1,2}|other|cancel)$")


@dataclass(frozen=True)
class Tap:
    kind: str  # q: an option; c: a question's choice; h: the hold's cancel button
    ref: str  # the quote id, or the hold id
    value: str  # the option or choice number, "other" or "cancel"

    @property
    def number(self) -> int | None:
        return int(self.value) if self.value.isdigit() else None


def parse(text: str) -> Tap | None:
    found = _TAP.match(text.strip())
    return Tap(*found.groups()) if found else None


def quote_ref(message_id: str) -> str:
    """The id of the options a message's turn shows: the same on a retry of that turn."""
    return hashlib.sha256(message_id.encode()).hexdigest()[:10]


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def options_list(ref: str, options: Sequence[tuple[str, str]], lang: str) -> dict[str, Any]:
    """The quote's options ((name, total shown)) as a list, one row each."""
    rows = [
        {
            "id": f"q:{ref}:{n}",
            "title": _short(name, 24),
            "description": _short(replies.render("tap_row", lang, total=total), 72),
        }
        for n, (name, total) in enumerate(options[:MAX_ROWS], start=1)
    ]
    button = _short(replies.render("tap_see_options", lang), 20)
    return {"type": "list", "action": {"button": button, "sections": [{"rows": rows}]}}


def yes_or_other(ref: str, lang: str) -> dict[str, Any]:
    """Yes to the one reading a question offers, or other dates."""
    return _buttons(
        (f"c:{ref}:1", replies.render("tap_yes", lang)),
        (f"c:{ref}:other", replies.render("tap_other_dates", lang)),
    )


def cancel_hold(hold_id: str, lang: str) -> dict[str, Any]:
    return _buttons((f"h:{hold_id}:cancel", replies.render("tap_cancel", lang)))


def _buttons(*buttons: tuple[str, str]) -> dict[str, Any]:
    return {
        "type": "button",
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": id_, "title": _short(title, 20)}}
                for id_, title in buttons
            ]
        },
    }
