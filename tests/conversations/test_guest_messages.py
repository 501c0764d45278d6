"""The guest message set (guest_messages/*.jsonl) as a test: each message read as written.

The same set scores the rules in ``make bench-understanding``; here every case must hold.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from app.conversations.understanding import understand

SET = Path(__file__).parent / "guest_messages"
TODAY = dt.date(2027, 3, 10)


def _cases() -> list[Any]:
    cases = []
    for path in sorted(SET.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                case = json.loads(line)
                cases.append(pytest.param(case, id=case["id"]))
    return cases


def _date(raw: str | None) -> dt.date | None:
    return dt.date.fromisoformat(raw) if raw else None


@pytest.mark.parametrize("case", _cases())
def test_message_is_read_as_a_receptionist_would(case: dict[str, Any]) -> None:
    u = understand(case["text"], TODAY)
    ages = case["children_ages"]
    expected = {
        "intent": case["intent"],
        "checkin": _date(case["checkin"]),
        "checkout": _date(case["checkout"]),
        "adults": case["adults"],
        "children_ages": tuple(ages) if ages is not None else None,
        "holiday": case["holiday"],
        "asks": case["ambiguous"],
    }
    got = {
        "intent": u.intent,
        "checkin": u.checkin,
        "checkout": u.checkout,
        "adults": u.adults,
        "children_ages": u.children_ages,
        "holiday": u.holiday.name if u.holiday else None,
        "asks": u.question is not None,
    }
    assert got == expected, case["text"]
