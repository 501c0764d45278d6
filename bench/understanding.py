"""How well the rules read guests: ``make bench-understanding``.

The set is tests/conversations/guest_messages/*.jsonl: messages as guests write them, each
with the reading a receptionist would make (written by helpers who never read the rules),
against a fixed today (2027-03-10). A message is fully right when intent, check-in,
check-out, adults and children's ages all equal the expectation (a field the message does
not state is expected empty). A wrong date accepted without a question is the worst
failure: the bot would quote the wrong week. Prints accuracy per field, per language and per
file (a file written after the rules shows how they generalize),
the count of those, and per-message latency; the last line is JSON with ``accuracy``,
``wrong_dates_unasked`` and ``p99_ms`` (targets: >= 0.97, 0, <= 5).
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from app.conversations.understanding import understand

SET = Path(__file__).resolve().parents[1] / "tests" / "conversations" / "guest_messages"
TODAY = dt.date(2027, 3, 10)
FIELDS = ("intent", "checkin", "checkout", "adults", "children_ages")
REPEATS = 20  # latency: each message read this many times after a warm-up


def load() -> list[dict[str, Any]]:
    """Every case, each with the name of the file it comes from as ``file``."""
    cases = []
    for path in sorted(SET.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                cases.append({**json.loads(line), "file": path.stem})
    return cases


def reading(text: str) -> dict[str, Any]:
    """The rules' reading of a message, in the set's terms."""
    u = understand(text, TODAY)
    return {
        "intent": u.intent,
        "checkin": u.checkin.isoformat() if u.checkin else None,
        "checkout": u.checkout.isoformat() if u.checkout else None,
        "adults": u.adults,
        "children_ages": list(u.children_ages) if u.children_ages is not None else None,
        "asks": u.question is not None,
    }


def score(cases: list[dict[str, Any]]) -> dict[str, Any]:
    right = defaultdict(int)
    per_language: dict[str, list[bool]] = defaultdict(list)
    per_file: dict[str, list[bool]] = defaultdict(list)
    unasked: list[str] = []
    misses: list[tuple[str, dict[str, Any]]] = []
    for case in cases:
        got = reading(case["text"])
        fields_ok = {f: got[f] == case.get(f) for f in FIELDS}
        for f, ok in fields_ok.items():
            right[f] += ok
        full = all(fields_ok.values())
        per_language[case["lang"]].append(full)
        per_file[case["file"]].append(full)
        if not full:
            misses.append(
                (case["id"], {f: (got[f], case.get(f)) for f in FIELDS if not fields_ok[f]})
            )
        dates_wrong = (got["checkin"], got["checkout"]) != (
            case.get("checkin"),
            case.get("checkout"),
        )
        if dates_wrong and got["checkin"] is not None and not got["asks"]:
            unasked.append(case["id"])
    n = len(cases)
    return {
        "messages": n,
        "accuracy": round(sum(all_ok for v in per_language.values() for all_ok in v) / n, 3),
        "fields": {f: round(right[f] / n, 3) for f in FIELDS},
        "languages": {k: round(sum(v) / len(v), 3) for k, v in sorted(per_language.items())},
        "files": {k: round(sum(v) / len(v), 3) for k, v in sorted(per_file.items())},
        "wrong_dates_unasked": len(unasked),
        "unasked": unasked,
        "misses": misses,
    }


def latency(cases: list[dict[str, Any]]) -> tuple[float, float]:
    for case in cases:  # warm up the interpreter before timing
        understand(case["text"], TODAY)
    times = []
    for _ in range(REPEATS):
        for case in cases:
            started = time.perf_counter()
            understand(case["text"], TODAY)
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99)]


def main() -> None:
    cases = load()
    result = score(cases)
    p50, p99 = latency(cases)
    for case_id, wrong in result.pop("misses"):
        print(
            f"miss {case_id}: "
            + "; ".join(f"{f} read {g!r}, expected {e!r}" for f, (g, e) in wrong.items())
        )
    print(f"{result['messages']} messages; fully right {result['accuracy']} (target >= 0.97)")
    print("by field: " + ", ".join(f"{f} {v}" for f, v in result["fields"].items()))
    print("by language: " + ", ".join(f"{k} {v}" for k, v in result["languages"].items()))
    print("by file: " + ", ".join(f"{k} {v}" for k, v in result["files"].items()))
    print(f"wrong dates accepted without a question: {result['wrong_dates_unasked']} (target 0)")
    print(f"latency per message: p50 {p50:.3f} ms, p99 {p99:.3f} ms (target <= 5)")
    summary = {k: v for k, v in result.items() if k != "unasked"}
    print(json.dumps({**summary, "p50_ms": round(p50, 3), "p99_ms": round(p99, 3)}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
