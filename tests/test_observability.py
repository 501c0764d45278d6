"""The log events the runbook watches, the log-based metrics and alert policies built on
them (deploy/monitoring/), and docs/operations/observability.md, held to each other: each
event is emitted with its documented fields by the real code path, each metric reads only
an event the app emits and fields that event carries, each alert counts a defined metric
and names a runbook playbook, and the document names them all."""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import orjson
import pytest
import yaml

import app.logging as app_logging
from app import db
from app.channels.fetch import Fetcher
from app.channels.sync import sync_calendar
from app.dev.fake_channel import FakeChannel
from app.dev.postgres import free_port
from app.inventory.holds import (
    cancel_hold,
    convert_hold,
    create_hold,
    expire_due_holds,
    expire_hold,
)
from app.inventory.property_file import CalendarSpec, PropertySpec, RoomTypeSpec
from app.inventory.setup import import_property
from app.inventory.stay import Stay
from app.logging import configure_logging
from app.ops.status import STATUS_CHECKS
from app.pii import pii_keys
from tests.inventory.conftest import make_calendar
from tests.support import ROOT, hold_request, serve_app

MONITORING = ROOT / "deploy" / "monitoring"
OBSERVABILITY = ROOT / "docs" / "operations" / "observability.md"
RUNBOOK = ROOT / "docs" / "operations" / "README.md"

# On every line (app/logging.py); `logging.googleapis.com/trace` only with a trace header.
COMMON = {"severity", "message", "logger", "time", "role", "correlation_id"}
# What each watched event carries besides COMMON: the contract the metrics read.
EVENT_FIELDS = {
    # Every access line has the first four; task lines add `outcome` (proven in
    # tests/tasks/test_ops_status.py), and other annotations vary by route.
    "http_request": {"method", "path", "status", "duration_ms", "outcome"},
    "hold_created": {"hold_id", "property_id", "nights", "units"},
    "hold_expired": {"hold_id", "via"},
    "hold_cancelled": {"hold_id", "reason"},
    "hold_converted": {"hold_id", "payment_id", "reservation_id", "provider"},
    "payment_needs_refund": {"hold_id", "payment_id", "provider", "outcome"},
    "channel_conflict_recorded": {"calendar_id", "conflicts"},
    "invariant_check": {"check", "found", "threshold", "sev"},
    "ops_status": {"breached", "checks"},
}
ACCESS_FIELDS = {"method", "path", "status", "duration_ms"}
# Annotations a route adds to its access line when it refuses (tests/ops/test_pause.py).
REFUSAL_FIELDS = {"reason", "provider"}
SERVICES = {"hotelly-public", "hotelly-worker"}
USER_METRIC = re.compile(r'metric\.type="logging\.googleapis\.com/user/([^"]+)"')
JSON_FIELD = re.compile(r"jsonPayload\.(\w+)")
ALERT_SEVERITY = {"SEV0": "CRITICAL", "SEV1": "ERROR", "SEV2": "WARNING"}


@pytest.fixture
def json_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The JSON lines the app's own logging setup (configure_logging) writes, as Cloud Run
    reads them from stdout; pytest's handlers and every logger's level come back after."""
    root = logging.getLogger()
    handlers, level, role = root.handlers[:], root.level, app_logging._role
    loggers = logging.root.manager.loggerDict
    levels = {name: lg.level for name, lg in loggers.items() if isinstance(lg, logging.Logger)}
    out = io.StringIO()
    configure_logging("worker", stream=out)
    try:
        yield lambda: [orjson.loads(line) for line in out.getvalue().splitlines() if line]
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        app_logging._role = role
        for name, lg in loggers.items():
            if isinstance(lg, logging.Logger):
                lg.setLevel(levels.get(name, logging.NOTSET))


def _events(lines: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["message"] == event]


def _fields(line: dict[str, Any]) -> set[str]:
    assert line.keys() >= COMMON, line
    return set(line) - COMMON


# ---- the events, from the real code paths ----------------------------------------------


async def test_each_change_of_a_hold_logs_its_event_with_ids_only(
    conn: asyncpg.Connection, json_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    """create_hold logs hold_created once (a replay of its key logs nothing); an expire task
    and the sweep log hold_expired (via task / sweep); a cancel logs hold_cancelled with its
    reason; a payment logs hold_converted, and a second payment of the same hold
    payment_needs_refund (duplicate). Each line carries exactly its documented fields."""
    cal = await make_calendar(conn, [("std", 2, 5, 30000)])
    room = cal.room_type_ids["std"]

    def request(first: int, key: str) -> Any:
        checkin = cal.start + dt.timedelta(days=first)
        stay = Stay(checkin, checkin + dt.timedelta(days=2), 2)
        return hold_request(cal.property.id, stay, ((room, 1),), key)

    expiring = await create_hold(conn, request(0, "a"), ttl_seconds=600)
    await create_hold(conn, request(0, "a"), ttl_seconds=600)  # the same key: a replay
    swept = await create_hold(conn, request(2, "b"), ttl_seconds=600)
    cancelled = await create_hold(conn, request(4, "c"), ttl_seconds=600)
    paid = await create_hold(conn, request(6, "d"), ttl_seconds=600)
    await conn.execute(
        "UPDATE holds SET expires_at = now() - interval '1 minute' WHERE id = any($1::uuid[])",
        [expiring.id, swept.id],
    )
    assert await expire_hold(conn, expiring.id)
    assert await expire_due_holds(conn, 10) == [swept.id]
    assert await cancel_hold(conn, cancelled.id, "guest_request")
    money = {"amount_cents": paid.total_cents, "currency": "brl"}
    first = await convert_hold(conn, paid.id, provider_object_id="cs_first", **money)
    second = await convert_hold(conn, paid.id, provider_object_id="cs_second", **money)
    assert (first.outcome, second.outcome) == ("converted", "duplicate")

    lines = json_lines()
    created = _events(lines, "hold_created")
    assert [line["hold_id"] for line in created] == [
        str(h.id) for h in (expiring, swept, cancelled, paid)
    ]
    assert created[0] | {"property_id": cal.property.id, "nights": 2, "units": 1} == created[0]
    expired = _events(lines, "hold_expired")
    assert [(line["hold_id"], line["via"]) for line in expired] == [
        (str(expiring.id), "task"),
        (str(swept.id), "sweep"),
    ]
    [cancel] = _events(lines, "hold_cancelled")
    assert (cancel["hold_id"], cancel["reason"]) == (str(cancelled.id), "guest_request")
    [converted] = _events(lines, "hold_converted")
    assert converted["reservation_id"] == str(first.reservation_id)
    assert (converted["payment_id"], converted["provider"]) == (str(first.payment_id), "stripe")
    [refund] = _events(lines, "payment_needs_refund")
    assert refund["severity"] == "WARNING"
    assert (refund["payment_id"], refund["outcome"]) == (str(second.payment_id), "duplicate")
    for event in ("hold_created", "hold_expired", "hold_cancelled", "hold_converted"):
        for line in _events(lines, event):
            assert _fields(line) == EVENT_FIELDS[event], line
            assert line["severity"] == "INFO"
    assert _fields(refund) == EVENT_FIELDS["payment_needs_refund"]


async def test_a_channel_sync_that_records_conflicts_logs_how_many(
    db_url: str,
    make_settings: Any,
    json_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    """A channel booking over nights we sold: the sync logs channel_conflict_recorded once
    with its calendar's id and the count of new conflicts (no uid, no URL); syncing the same
    feed again records nothing new and logs no second line."""
    channel = FakeChannel(free_port())
    await channel.start()
    pool = await db.create_pool(db_url, 2)
    try:
        pii = pii_keys(make_settings())
        today = dt.datetime.now(ZoneInfo("America/Sao_Paulo")).date()
        spec = PropertySpec(
            code="obs-inn",
            name="Pousada Obs",
            timezone="America/Sao_Paulo",
            currency="BRL",
            whatsapp={"phone_number_id": "pn-obs-inn"},
            room_types=(
                RoomTypeSpec(
                    "std",
                    "Std",
                    2,
                    1,
                    30000,
                    calendars=(CalendarSpec("airbnb", channel.url("airbnb")),),
                ),
            ),
            overrides=(),
            start=today,
            end=today + dt.timedelta(days=30),
        )
        async with pool.acquire() as conn:
            await import_property(conn, spec, pii=pii, ical_secret="obs-secret")
            prop_id, room = await conn.fetchrow(
                "SELECT p.id, rt.id FROM properties p JOIN room_types rt ON rt.property_id = p.id"
            )
            calendar_id = await conn.fetchval("SELECT id FROM calendars")
            stay = Stay(today + dt.timedelta(days=5), today + dt.timedelta(days=7), 2)
            hold = await create_hold(
                conn, hold_request(prop_id, stay, ((room, 1),), "ours"), ttl_seconds=600
            )
            await convert_hold(
                conn,
                hold.id,
                provider_object_id="cs_ours",
                amount_cents=hold.total_cents,
                currency="brl",
            )
        uid = channel.book("airbnb", today + dt.timedelta(days=4), today + dt.timedelta(days=8))
        fetcher = Fetcher(allow_local=True)
        first = await sync_calendar(pool, pii, fetcher, calendar_id)
        assert (first["outcome"], first["conflicts"]) == ("applied", 1)
        again = await sync_calendar(pool, pii, fetcher, calendar_id)
        assert "conflicts" not in again
    finally:
        await pool.close()
        await channel.stop()

    lines = json_lines()
    [line] = _events(lines, "channel_conflict_recorded")
    assert (line["calendar_id"], line["conflicts"], line["severity"]) == (calendar_id, 1, "WARNING")
    assert _fields(line) == EVENT_FIELDS["channel_conflict_recorded"]
    assert uid not in str(lines) and channel.base_url not in str(lines)


async def test_a_webhook_answer_is_one_access_line_with_its_status_and_latency(
    make_settings: Any, json_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    """A Stripe webhook with a bad signature is answered 400 and logged as one
    http_request line with its method, route template, status and duration: what the
    webhook metrics read."""
    async with serve_app(make_settings("public")) as base, httpx.AsyncClient() as http:
        response = await http.post(
            f"{base}/webhooks/stripe",
            content=b"{}",
            headers={"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=x"},
        )
    assert response.status_code == 400
    [line] = [line for line in _events(json_lines(), "http_request") if line["path"] != "/health"]
    assert line | {"method": "POST", "path": "/webhooks/stripe", "status": 400} == line
    assert line["severity"] == "WARNING" and isinstance(line["duration_ms"], int | float)
    assert _fields(line) >= ACCESS_FIELDS


# ---- the metric and alert definitions --------------------------------------------------


def _load(kind: str) -> dict[str, dict[str, Any]]:
    files = sorted((MONITORING / kind).glob("*.yaml"))
    assert files, f"no {kind}"
    return {path.stem: yaml.safe_load(path.read_text()) for path in files}


def _app_source() -> str:
    return "".join(
        path.read_text()
        for path in (ROOT / "app").rglob("*.py")
        if "dev" not in path.relative_to(ROOT / "app").parts
    )


def _event_of(filter_: str) -> str:
    [event] = re.findall(r'jsonPayload\.message="(\w+)"', filter_)
    return str(event)


def test_every_metric_reads_an_emitted_event_and_only_its_fields() -> None:
    """Each metric file is a LogMetric body: Cloud Run revisions of one of our two services,
    one event by its message, which the app's code logs (a string literal outside app/dev);
    every jsonPayload field its filter and extractors read is one that event carries; its
    labels are exactly its extractors; a distribution has a value extractor and buckets, a
    counter neither."""
    source = _app_source()
    for name, metric in _load("metrics").items():
        assert re.fullmatch(r"hotelly_[a-z_]+", name), name
        assert set(metric) <= {
            "description",
            "filter",
            "metricDescriptor",
            "labelExtractors",
            "valueExtractor",
            "bucketOptions",
        }, name
        assert metric["description"], name
        filter_ = metric["filter"]
        assert 'resource.type="cloud_run_revision"' in filter_, name
        services = re.findall(r'resource\.labels\.service_name="([^"]+)"', filter_)
        assert services and set(services) <= SERVICES, name
        event = _event_of(filter_)
        assert f'"{event}"' in source, f"{name}: no code logs {event}"
        extractors = metric.get("labelExtractors", {})
        read = " ".join([filter_, *extractors.values(), metric.get("valueExtractor", "")])
        fields = set(JSON_FIELD.findall(read)) - {"message"}
        carried = EVENT_FIELDS[event] | (REFUSAL_FIELDS if event == "http_request" else set())
        assert fields <= carried, (name, fields - carried)
        descriptor = metric["metricDescriptor"]
        assert descriptor["metricKind"] == "DELTA", name
        labels = {label["key"] for label in descriptor.get("labels", [])}
        assert labels == set(extractors), name
        if descriptor["valueType"] == "DISTRIBUTION":
            assert metric["valueExtractor"].startswith("EXTRACT(jsonPayload."), name
            assert metric["bucketOptions"]["exponentialBuckets"]["numFiniteBuckets"] > 0, name
        else:
            assert descriptor["valueType"] == "INT64", name
            assert "valueExtractor" not in metric and "bucketOptions" not in metric, name


def _conditions(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        condition.get("conditionThreshold") or condition["conditionAbsent"]
        for condition in policy["conditions"]
    ]


def _playbooks() -> set[str]:
    rows = re.findall(r"^\| ([^|]+?) \|", RUNBOOK.read_text(), re.MULTILINE)
    return {row for row in rows if row not in {"playbook", "---"}}


def test_every_alert_counts_defined_metrics_and_names_its_playbook() -> None:
    """Each alert file is an AlertPolicy body with a unique, stable display name that says
    its SEV; its Monitoring severity and `sev` label match it; its documentation names a
    playbook of the runbook (docs/operations/README.md); every condition counts a metric
    defined in deploy/monitoring/metrics by labels that metric has; no notification
    channel is in the file (deploy apply adds one)."""
    metrics = _load("metrics")
    playbooks = _playbooks()
    names = []
    for name, policy in _load("alerts").items():
        names.append(policy["displayName"])
        sev = re.match(r"Hotelly (SEV[012]): ", policy["displayName"])
        assert sev, name
        assert policy["severity"] == ALERT_SEVERITY[sev.group(1)], name
        assert policy["userLabels"]["sev"] == sev.group(1).lower(), name
        assert all(re.fullmatch(r"[a-z0-9_-]+", v) for v in policy["userLabels"].values()), name
        assert "notificationChannels" not in policy, name
        assert policy["combiner"] in {"OR", "AND"} and policy["enabled"] is True, name
        docs = policy["documentation"]
        assert docs["mimeType"] == "text/markdown", name
        assert docs["subject"].startswith(f"[{sev.group(1)}] "), name
        named = re.findall(r'playbook "([^"]+)"', docs["content"])
        assert named and set(named) <= playbooks, (name, named)
        for condition in _conditions(policy):
            for key in ("filter", "denominatorFilter"):
                if key not in condition:
                    continue
                assert 'resource.type="cloud_run_revision"' in condition[key], name
                [metric] = USER_METRIC.findall(condition[key])
                assert metric in metrics, (name, metric)
                labels = {label["key"] for label in metrics[metric]["metricDescriptor"]["labels"]}
                used = set(re.findall(r"metric\.label\.(\w+)", condition[key]))
                assert used <= labels, (name, used - labels)
            assert condition["aggregations"][0]["alignmentPeriod"].endswith("s"), name
    assert len(names) == len(set(names))


def test_every_status_check_has_its_alert_at_its_severity() -> None:
    """Each check of app/ops/status.py's table pages through exactly one alert on the
    breaches metric, labelled with the check, at the check's severity, naming the check's
    playbook (a row of the runbook)."""
    policies = _load("alerts")
    playbooks = _playbooks()
    for check in STATUS_CHECKS:
        assert check.playbook in playbooks, check.name
        matching = [
            policy
            for policy in policies.values()
            for condition in _conditions(policy)
            if "hotelly_invariant_breaches" in condition["filter"]
            and f'metric.label.check="{check.name}"' in condition["filter"]
        ]
        assert len(matching) == 1, check.name
        [policy] = matching
        assert policy["userLabels"] == {"sev": check.severity.lower(), "check": check.name}
        assert f'playbook "{check.playbook}"' in policy["documentation"]["content"]


def test_the_document_names_every_event_metric_alert_and_check() -> None:
    """docs/operations/observability.md has a row for each watched event listing each of
    its fields, and names every metric, every alert (display name and file) and every
    status check with its threshold and SEV."""
    text = OBSERVABILITY.read_text()
    rows = {
        match.group(1): match.group(0)
        for match in re.finditer(r"^\| `([\w-]+)` \|.*$", text, re.MULTILINE)
    }
    for event, fields in EVENT_FIELDS.items():
        assert event in rows, event
        for field in fields:
            assert f"`{field}`" in rows[event], (event, field)
    for name in _load("metrics"):
        assert f"`{name}`" in text, name
    for name, policy in _load("alerts").items():
        assert policy["displayName"] in text and f"`{name}.yaml`" in text, name
    for check in STATUS_CHECKS:
        row = rows[check.name]
        assert f"| {check.threshold} | {check.severity} | {check.playbook} |" in row, row


def test_monitoring_files_are_yaml_documents_of_their_kind() -> None:
    """Nothing else lives in deploy/monitoring: every file is a .yaml under metrics/ or
    alerts/ (deploy apply reads those two directories whole)."""
    files = [p for p in MONITORING.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert path.suffix == ".yaml" and path.parent.name in {"metrics", "alerts"}, path
        assert isinstance(yaml.safe_load(path.read_text()), dict), path
