"""The task catalog: every task kind declared once, every name it builds legal."""

from __future__ import annotations

import re

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from app.deploy.plan import Options, build_plan
from app.http import worker
from app.tasks.catalog import (
    CATALOG,
    QUEUES,
    RECEIPT_TASKS,
    STAFF_NOTIFY,
    STRIPE_EVENT,
    WHATSAPP_MESSAGE,
    scheduled,
)
from tests.support import ROOT

LEGAL = re.compile(r"^[A-Za-z0-9_-]{1,500}$")


@given(key=st.text(max_size=2000), generation=st.integers(min_value=0, max_value=99))
def test_no_key_makes_an_illegal_task_name(key: str, generation: int) -> None:
    """Whatever the id (dots, slashes, NUL, emoji, 2,000 characters), every kind's task name
    is one Cloud Tasks accepts, and the same key always makes the same name."""
    for kind in CATALOG:
        name = kind.task_name(key, generation)
        assert LEGAL.match(name), name
        assert name == kind.task_name(key, generation)


@pytest.mark.parametrize(
    ("kind", "key", "expected"),
    [
        (STRIPE_EVENT, "evt_1Abc", "stripe-evt_1Abc"),
        (WHATSAPP_MESSAGE, "3EB0C767D097B7C9D4C4", "wa-3EB0C767D097B7C9D4C4"),
    ],
)
def test_safe_keys_keep_their_readable_name(kind: object, key: str, expected: str) -> None:
    """A short, safe provider id stays readable in the task's name."""
    assert kind.task_name(key) == expected  # type: ignore[attr-defined]


def test_unsafe_sequential_and_regenerated_names() -> None:
    """A WhatsApp id with dots is hashed; outbox ids (sequential) are always hashed; a
    re-enqueue takes the generation into the prefix."""
    assert re.fullmatch(r"wa-[0-9a-f]{32}", WHATSAPP_MESSAGE.task_name("wamid.HBgN=="))
    assert re.fullmatch(r"staff-[0-9a-f]{32}", STAFF_NOTIFY.task_name("42"))
    assert STRIPE_EVENT.task_name("evt_1", 2) == "stripe-g2-evt_1"


def test_every_kind_is_routed_queued_and_scheduled_as_declared() -> None:
    """Each kind has one worker route and a known queue; every receipt source has a kind;
    the deploy plan's Cloud Scheduler jobs run exactly the scheduled kinds, on their
    schedules, against their worker paths; deploy/queues.yaml defines every queue."""
    task_paths = [r.path for r in worker.routes if r.path.startswith("/tasks")]
    assert sorted(task_paths) == sorted(kind.path for kind in CATALOG)
    assert all(kind.queue in QUEUES for kind in CATALOG)
    assert set(RECEIPT_TASKS.values()) <= set(CATALOG)
    worker_url = "https://hotelly-worker-1.test.run.app"
    plan = build_plan(Options("p", "test", "tag", worker_url=worker_url, alert_email="a@b.test"))
    jobs = [dict(a[2:].split("=", 1) for a in s.command if "=" in a) for s in plan.steps]
    declared = {
        (job["schedule"], job["uri"].removeprefix(worker_url)) for job in jobs if "schedule" in job
    }
    assert declared == {(kind.schedule, kind.path) for kind in scheduled()}
    queues = yaml.safe_load((ROOT / "deploy" / "queues.yaml").read_text())["queues"]
    assert set(queues) == set(QUEUES)
