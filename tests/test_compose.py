"""deploy/compose.yaml runs what `make run` runs: the same setup steps in the same order, the
same processes with the same arguments, on the image's dev stage, configured by .env.example
(Docker itself is not available here: the file is checked against the Compose
Specification's own schema, vendored, and against app/dev/stack.py's tables)."""

from __future__ import annotations

import copy
import itertools
import json
import re
from pathlib import PurePosixPath
from typing import Any

import jsonschema
import pytest
import yaml
from dotenv import dotenv_values

from app.dev.stack import SETUP, processes
from tests.support import ROOT

COMPOSE = ROOT / "deploy" / "compose.yaml"
SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec" / "compose-spec.json"
# Where compose's local Cloud Tasks keeps its key: the container's /tmp survives a restart.
COMPOSE_KEY_FILE = "/tmp/tasks-signing-key.pem"
ROLE_PORTS = {"public": "8080", "worker": "8081"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


@pytest.fixture(scope="module")
def app_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every service but postgres: the ones that run the app's code."""
    return {name: s for name, s in compose["services"].items() if name != "postgres"}


def _env_example() -> dict[str, str]:
    return {k: v for k, v in dotenv_values(ROOT / ".env.example").items() if v is not None}


def _validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _after(service: dict[str, Any]) -> dict[str, str]:
    """The services this one waits for, with the condition of each."""
    return {name: dep["condition"] for name, dep in service.get("depends_on", {}).items()}


def test_compose_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    """The file validates against the pinned Compose Specification schema, and that
    validation is not vacuous: a depends_on condition the specification does not know is
    refused."""
    validator = _validator()
    assert list(validator.iter_errors(compose)) == []

    broken = copy.deepcopy(compose)
    broken["services"]["migrate"]["depends_on"]["postgres"]["condition"] = "service_done"
    assert list(validator.iter_errors(broken))


def test_compose_runs_the_processes_and_setup_steps_make_run_runs(
    app_services: dict[str, dict[str, Any]],
) -> None:
    """Compose's services, postgres aside, are exactly make run's setup steps and processes;
    each runs python with the argv the stack gives it from .env.example's values (the fakes
    at the addresses the app is configured with), its own variables, and waits for what it
    needs in the stack."""
    table = processes(_env_example(), COMPOSE_KEY_FILE)
    assert set(app_services) == set(SETUP) | {process.name for process in table}
    for name, argv in SETUP.items():
        assert app_services[name]["entrypoint"] == ["python"], name
        assert app_services[name]["command"] == list(argv), name
    started: set[str] = set()
    for process in table:
        service = app_services[process.name]
        assert service["entrypoint"] == ["python"], process.name
        assert service["command"] == list(process.argv), process.name
        # Published ports arrive on the namespace's outer interface, not its loopback.
        published = {"HOST": "0.0.0.0"} if process.name in ROLE_PORTS else {}
        assert service.get("environment", {}) == {**process.env, **published}, process.name
        needs = {need: "service_started" for need in process.needs}
        assert _after(service).items() >= needs.items(), process.name
        assert set(process.needs) <= started, process.name  # the table is a start order
        started.add(process.name)
        assert service["restart"] == "unless-stopped", process.name


def test_setup_steps_run_once_in_order_before_every_process(
    compose: dict[str, Any], app_services: dict[str, dict[str, Any]]
) -> None:
    """migrate waits for a healthy postgres, each import for the step before it to have
    succeeded, and every process for the last one; no setup step is restarted."""
    services = compose["services"]
    assert services["postgres"]["healthcheck"]["test"]
    steps = list(SETUP)
    assert steps[0] == "migrate"
    assert _after(services["migrate"]) == {"postgres": "service_healthy"}
    for before, step in itertools.pairwise(steps):
        assert _after(services[step]) == {before: "service_completed_successfully"}, step
    for name in steps:
        assert services[name]["restart"] == "no", name
    for name, service in app_services.items():
        if name not in SETUP:
            assert _after(service)[steps[-1]] == "service_completed_successfully", name


def test_every_variable_compose_sets_is_documented_in_env_example(
    app_services: dict[str, dict[str, Any]],
) -> None:
    """Every app service takes .env.example as its environment, and sets on top only
    variables .env.example documents."""
    documented = _env_example().keys()
    for name, service in app_services.items():
        assert service["env_file"] == "../.env.example", name
        assert (COMPOSE.parent / service["env_file"]).resolve() == ROOT / ".env.example"
        assert set(service.get("environment", {})) <= documented, name


def test_public_serves_8080_and_worker_8081_published_on_loopback(
    compose: dict[str, Any], app_services: dict[str, dict[str, Any]]
) -> None:
    """Every app service shares postgres's network namespace (so .env.example's 127.0.0.1
    addresses hold); that service publishes public's 8080 and worker's 8081 on the host's
    loopback, the ports make run serves."""
    for name, service in app_services.items():
        assert service["network_mode"] == "service:postgres", name
        assert "ports" not in service, name
    for role, port in ROLE_PORTS.items():
        env = app_services[role]["environment"]
        assert env["ROLE"] == role and env["PORT"] == port
    published = {f"127.0.0.1:{port}:{port}" for port in ROLE_PORTS.values()}
    assert set(compose["services"]["postgres"]["ports"]) == published


def test_app_services_build_the_dev_stage_and_see_the_sample_files(
    app_services: dict[str, dict[str, Any]],
) -> None:
    """Every app service builds deploy/Dockerfile's `dev` stage (the fakes live in app/dev)
    from the repository's root, a stage the Dockerfile has; the imports mount
    docs/examples read-only where their relative paths point: under the image's WORKDIR."""
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert re.search(r"^FROM\s+\S+\s+AS\s+dev\s*$", dockerfile, re.MULTILINE | re.IGNORECASE)
    (workdir,) = set(re.findall(r"^WORKDIR\s+(\S+)\s*$", dockerfile, re.MULTILINE))
    for name, service in app_services.items():
        build = service["build"]
        assert build["target"] == "dev", name
        assert (COMPOSE.parent / build["context"]).resolve() == ROOT, name
        assert build["dockerfile"] == "deploy/Dockerfile", name
    mount = f"../docs/examples:{PurePosixPath(workdir) / 'docs' / 'examples'}:ro"
    for name, argv in SETUP.items():
        samples = [arg for arg in argv if arg.startswith("docs/examples/")]
        assert all((ROOT / sample).is_file() for sample in samples), name
        assert (app_services[name].get("volumes") == [mount]) == bool(samples), name
