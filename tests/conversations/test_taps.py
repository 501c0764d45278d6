"""Tap-to-choose forms within Graph's limits, and tap ids read back exactly."""

from __future__ import annotations

import pytest

from app.conversations import taps


def test_a_quote_list_fits_graphs_limits() -> None:
    options = [(f"Suíte família com vista para o mar {n}", "R$ 1.234.567,89") for n in range(12)]
    listed = taps.options_list("0123456789", options, "es")
    action = listed["action"]
    rows = action["sections"][0]["rows"]
    assert listed["type"] == "list" and action["button"] == "Ver opciones"
    assert len(rows) == taps.MAX_ROWS  # the rest stay numbered in the text
    assert [r["id"] for r in rows] == [f"q:0123456789:{n}" for n in range(1, 11)]
    assert all(len(r["title"]) == 24 and r["title"].endswith("…") for r in rows)
    assert rows[0]["description"] == "R$ 1.234.567,89 en total"


def test_buttons_carry_their_ids() -> None:
    hold = "6f1c2b8e-0d5a-4c7e-9b7a-1f2e3d4c5b6a"
    [button] = taps.cancel_hold(hold, "en")["action"]["buttons"]
    assert button == {"type": "reply", "reply": {"id": f"h:{hold}:cancel", "title": "Cancel"}}
    yes, other = taps.yes_or_other("0123456789", "pt")["action"]["buttons"]
    assert (yes["reply"]["id"], other["reply"]["id"]) == ("c:0123456789:1", "c:0123456789:other")


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("q:0123456789:2", ("q", "0123456789", "2")),
        (" c:0123456789:other ", ("c", "0123456789", "other")),
        (
            "h:6f1c2b8e-0d5a-4c7e-9b7a-1f2e3d4c5b6a:cancel",
            ("h", "6f1c2b8e-0d5a-4c7e-9b7a-1f2e3d4c5b6a", "cancel"),
        ),
        ("q:0123:2", None),  # not an id we make
        ("quero o 2", None),
        ("q:0123456789:2 por favor", None),
        ("x:0123456789:2", None),
    ],
)
def test_tap_ids_are_read_exactly(text: str, read: tuple[str, str, str] | None) -> None:
    tap = taps.parse(text)
    assert (tap and (tap.kind, tap.ref, tap.value)) == read


def test_a_quote_ref_is_the_same_on_a_retry_of_its_turn() -> None:
    assert taps.quote_ref("wamid.A") == taps.quote_ref("wamid.A") != taps.quote_ref("wamid.B")
