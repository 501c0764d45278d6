"""The cancellation policy as the property file gives it and as the guest reads it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.conversations.replies import policy_line
from app.errors import BadRequest
from app.inventory.property_file import CancellationTier, parse_property
from tests.support import SAMPLE_PROPERTY

POLICY = [(7, 100), (2, 50), (0, 0)]


def _sample(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(SAMPLE_PROPERTY.read_bytes())
    return {**data, **changes}


def test_the_sample_policy_is_read_most_days_first() -> None:
    spec = parse_property(_sample())
    assert spec.cancellation == (
        CancellationTier(7, 100),
        CancellationTier(2, 50),
        CancellationTier(0, 0),
    )


@pytest.mark.parametrize(
    "policy",
    [
        "100%",
        [{"days_before": 7}],
        [{"days_before": -1, "refund_percent": 50}],
        [{"days_before": 1, "refund_percent": 101}],
        [{"days_before": 1, "refund_percent": 50}, {"days_before": 1, "refund_percent": 0}],
    ],
)
def test_a_malformed_policy_is_refused_with_what_is_wrong(policy: Any) -> None:
    with pytest.raises(BadRequest, match="cancellation"):
        parse_property(_sample(cancellation=policy))


@pytest.mark.parametrize(
    ("language", "line"),
    [
        (
            "pt",
            "Cancelamento: reembolso de 100% até 7 dias antes da chegada, reembolso de 50% "
            "até 2 dias antes da chegada; depois, sem reembolso. ",
        ),
        (
            "es",
            "Cancelación: reembolso del 100% hasta 7 días antes de la llegada, reembolso del "
            "50% hasta 2 días antes de la llegada; después, sin reembolso. ",
        ),
        (
            "en",
            "Cancellation: 100% refund up to 7 days before arrival, 50% refund up to 2 days "
            "before arrival; after that, no refund. ",
        ),
    ],
)
def test_the_guest_reads_the_policy_in_one_line(language: str, line: str) -> None:
    assert policy_line(POLICY, language) == line


def test_policies_without_a_cut_off_or_without_refunds_read_right() -> None:
    assert policy_line([(1, 100), (0, 50)], "en") == (
        "Cancellation: 100% refund up to 1 day before arrival, 50% refund up to the day of "
        "arrival. "
    )
    assert policy_line([(0, 0)], "pt") == "Cancelamento: sem reembolso. "
    assert policy_line([], "pt") == ""
