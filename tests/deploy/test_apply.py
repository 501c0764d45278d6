"""`deploy apply` against a fake gcloud on PATH (tests/deploy/fake_gcloud.py): an empty
project is deployed in full, a second apply changes nothing, missing secrets stop it before
any deploy, and a failing command stops it with gcloud's own words."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.cli import main
from app.deploy import names
from app.deploy.plan import Options, build_plan
from tests.deploy.fake_gcloud import PROJECT_NUMBER, FakeGcloud, install

PROJECT, REGION, TAG = "hotelly-pilot", "southamerica-east1", "0123456789ab"
EMAIL = "oncall@pousada.example"
ARGS = ["--project", PROJECT, "--region", REGION, "--tag", TAG, "--alert-email", EMAIL]
WORKER_URL = f"https://hotelly-worker-{PROJECT_NUMBER}.{REGION}.run.app"


@dataclass(frozen=True)
class Applied:
    code: int
    out: str
    err: str

    def summary(self) -> dict:  # type: ignore[type-arg]
        return json.loads(self.out.strip().splitlines()[-1])


@pytest.fixture
def gcloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeGcloud:
    """The fake first on PATH, so apply's gcloud is always it, never a real one."""
    fake = install(tmp_path)
    monkeypatch.setenv("PATH", f"{fake.bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    return fake


def _mounted_secrets() -> list[str]:
    plan = build_plan(Options(PROJECT, REGION, TAG, alert_email=EMAIL))
    return [step.secret for step in plan.steps if step.secret]


def _apply(capsys: pytest.CaptureFixture[str]) -> Applied:
    """The CLI's `deploy apply`, in this process (each gcloud call is a process already)."""
    code = main(["deploy", "apply", *ARGS])
    captured = capsys.readouterr()
    return Applied(code, captured.out, captured.err)


def _words(argv: list[str]) -> list[str]:
    return [a for a in argv if not a.startswith("--")]


def test_apply_deploys_an_empty_project_and_a_second_apply_changes_nothing(
    gcloud: FakeGcloud, capsys: pytest.CaptureFixture[str]
) -> None:
    """With every secret present, apply creates everything and fills the placeholders (the
    worker's URL from the project number, the alert channel it created); run again, it
    creates nothing, builds no image and leaves every resource exactly as it was."""
    for secret in _mounted_secrets():
        gcloud.add_secret(secret)
    first = _apply(capsys)
    assert first.code == 0, first.err
    assert first.summary()["created"] > 0
    resources = gcloud.resources()
    worker = resources[f"run/{REGION}/service/{names.WORKER_SERVICE}"]
    assert f"OIDC_AUDIENCE={WORKER_URL}" in worker["set-env-vars"]
    sweep = resources[f"scheduler/{REGION}/{names.scheduler_job_name('/tasks/holds/sweep')}"]
    assert sweep["uri"] == f"{WORKER_URL}/tasks/holds/sweep"
    assert sweep["oidc-token-audience"] == WORKER_URL
    channels = [key for key in resources if key.startswith("channel/")]
    assert len(channels) == 1
    policies = [value for key, value in resources.items() if key.startswith("policy/")]
    assert policies and all(p["channels"] == channels[0].removeprefix("channel/") for p in policies)
    assert resources[f"image/{names.image(PROJECT, REGION, TAG)}"] == {
        "config": "deploy/cloudbuild.yaml",
        "substitutions": f"_IMAGE={names.image(PROJECT, REGION, TAG)}",
    }
    calls_before = len(gcloud.state()["calls"])

    second = _apply(capsys)

    assert second.code == 0, second.err
    assert gcloud.resources() == resources
    again = gcloud.state()["calls"][calls_before:]
    assert not [c for c in again if _words(c["argv"])[:2] == ["builds", "submit"]]
    assert not [c for c in again if "create" in _words(c["argv"]) and c["exit"] == 0]
    assert "created" not in second.summary()
    assert "already exists: updating" in second.out


def test_apply_with_two_secrets_missing_names_both_and_deploys_nothing(
    gcloud: FakeGcloud, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two secrets without a version: apply checks them all, prints how to create each (the
    value from the operator's shell), exits 1, and neither the job nor a service is deployed
    nor any secret granted."""
    secrets = _mounted_secrets()
    missing = [names.secret_name("STRIPE_SECRET_KEY"), names.secret_name("WHATSAPP_APP_SECRET")]
    for secret in secrets:
        if secret not in missing:
            gcloud.add_secret(secret)

    result = _apply(capsys)

    assert result.code == 1
    assert result.summary() == {"error": "secrets_missing", "missing": missing}
    for secret in missing:
        create = (
            f'printf %s "$VALUE" | gcloud secrets create {secret} --data-file=- --project={PROJECT}'
        )
        assert create in result.out.splitlines()
    ran = [_words(argv) for argv in gcloud.calls()]
    assert not [w for w in ran if w[:2] in (["run", "deploy"], ["run", "jobs"])]
    assert not [w for w in ran if w[:2] == ["secrets", "add-iam-policy-binding"]]
    assert sum(1 for w in ran if w[:3] == ["secrets", "versions", "describe"]) == len(secrets)


def test_a_failing_command_stops_apply_with_its_stderr(
    gcloud: FakeGcloud, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failure that is not "already exists" stops apply at once: the command and what
    gcloud said are on stderr, the last stdout line says which step, nothing after it runs."""
    gcloud.fail("sql instances create")

    result = _apply(capsys)

    assert result.code == 1
    assert "PERMISSION_DENIED" in result.err
    assert f"gcloud sql instances create {names.DEFAULT_INSTANCE}" in result.err
    assert result.summary()["error"] == "step_failed"
    assert _words(gcloud.calls()[-1])[:3] == ["sql", "instances", "create"]


def test_apply_refuses_alert_policies_without_an_alert_email(
    gcloud: FakeGcloud, capsys: pytest.CaptureFixture[str]
) -> None:
    """With alert policies to create and no --alert-email, apply refuses in one line before
    running anything: they would page no one."""
    code = main(["deploy", "apply", "--project", PROJECT, "--region", REGION, "--tag", TAG])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "--alert-email is required" in err
    assert gcloud.calls() == []
