"""Deploy files agree with the local configuration (Docker itself is not available here)."""

from __future__ import annotations

import re

import yaml

from tests.support import ROOT


def _env_example() -> dict[str, str]:
    pairs = [
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    return dict(pairs)  # type: ignore[arg-type]


def test_compose_services_env_and_ports_match_env_example() -> None:
    """compose.yaml has postgres, a one-shot migrate and both roles; every variable it sets
    is one .env.example documents; public serves 8080 and worker 8081 as `make run` does."""
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "migrate", "tasks", "stripe", "public", "worker"} <= services.keys()
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    documented = _env_example().keys()
    for name in ("migrate", "tasks", "stripe", "public", "worker"):
        assert set(services[name]["environment"]) <= documented, name
    tasks = services["tasks"]
    env = services["worker"]["environment"]
    assert env["TASKS_EMULATOR_HOST"] == f"tasks:{tasks['command'][3]}"
    assert env["OIDC_CERTS_URL"].startswith(f"http://tasks:{tasks['command'][5]}/")
    for role, port in (("public", "8080"), ("worker", "8081")):
        env = services[role]["environment"]
        assert env["ROLE"] == role and env["PORT"] == port
        assert services[role]["ports"] == [f"127.0.0.1:{port}:{port}"]
        assert (
            services[role]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        )


def test_dockerfile_runs_serve_as_non_root() -> None:
    """One image: a non-root USER and `python -m app serve` as entrypoint + command."""
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE)
    assert 'ENTRYPOINT ["python", "-m", "app"]' in dockerfile
    assert 'CMD ["serve"]' in dockerfile
