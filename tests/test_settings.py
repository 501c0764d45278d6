"""Configuration: parsed once, validated with one clear line, secrets never shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from app.settings import PRODUCTION_CERTS_URL, ConfigError, Secret, load_settings
from tests.support import ROOT, app_env, run_cli

URL = "postgresql://postgres:s3cr3t-pw@127.0.0.1:5432/hotelly"


def test_role_admin_stops_serve_with_one_line_naming_role() -> None:
    """`ROLE=admin serve` prints one line naming ROLE on stderr and exits 2, no traceback."""
    result = run_cli("serve", env=app_env(DATABASE_URL=URL, ROLE="admin"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "ROLE" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_serve_requires_role_but_other_commands_do_not() -> None:
    """`serve` without ROLE fails naming ROLE; `check-config` without ROLE succeeds."""
    missing = run_cli("serve", env=app_env(DATABASE_URL=URL))
    assert missing.returncode == 2 and "ROLE" in missing.stderr
    assert run_cli("check-config", env=app_env(DATABASE_URL=URL)).returncode == 0


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"DATABASE_URL": URL, "PORT": "eighty"}, "PORT"),
        ({"DATABASE_URL": URL, "PORT": "70000"}, "PORT"),
        ({"DATABASE_URL": URL, "DB_POOL_MAX": "0"}, "DB_POOL_MAX"),
        ({"DATABASE_URL": URL, "LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ],
)
def test_missing_or_malformed_variable_is_named(env: dict[str, str], variable: str) -> None:
    """Each missing or malformed variable raises ConfigError naming exactly that variable."""
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(variable)


def test_config_error_exit_code_and_single_line_from_cli() -> None:
    """A malformed PORT stops `migrate` with exit 2 and one stderr line naming PORT."""
    result = run_cli("migrate", env=app_env(DATABASE_URL=URL, PORT="x"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "PORT" in result.stderr


def test_secrets_never_appear_in_repr_or_check_config_output() -> None:
    """The database password shows neither in repr(settings) nor in check-config output."""
    settings = load_settings({"DATABASE_URL": URL})
    assert "s3cr3t-pw" not in repr(settings) and "s3cr3t-pw" not in str(settings.database_url)
    assert settings.database_url.reveal() == URL
    assert "s3cr3t-pw" not in repr(Secret("s3cr3t-pw"))
    result = run_cli("check-config", env=app_env(DATABASE_URL=URL))
    assert result.returncode == 0 and "s3cr3t-pw" not in result.stdout + result.stderr


def test_environment_overrides_dotenv_file(tmp_path: Path) -> None:
    """A variable in the environment wins over the same variable in .env; .env fills gaps."""
    (tmp_path / ".env").write_text(f"DATABASE_URL={URL}\nPORT=9999\nDB_POOL_MAX=7\n")
    result = run_cli("check-config", env=app_env(PORT="7777"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    shown = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert "port=7777" in shown and "db_pool_max=7" in shown


def test_env_example_is_a_working_configuration() -> None:
    """Sourcing .env.example gives a configuration every command accepts, every value set."""
    variables = [
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert variables and all(value.strip() for _, value in variables)
    result = subprocess.run(
        [
            "bash",
            "-c",
            'set -a; . ./.env.example; set +a; exec "$0" -m app check-config',
            sys.executable,
        ],
        cwd=ROOT,
        env=app_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_every_env_example_variable_is_documented_by_a_comment() -> None:
    """Each variable in .env.example sits under a comment (directly or in its group)."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    for index, line in enumerate(lines):
        if line and not line.startswith("#"):
            previous = lines[index - 1] if index else ""
            assert previous.startswith("#") or "=" in previous, line


LOCAL_CERTS = "http://127.0.0.1:8124/oauth2/v1/certs"


def test_oidc_certs_url_may_differ_from_googles_only_with_env_dev() -> None:
    """Certificates other than Google's would let whoever serves them mint tokens the worker
    accepts: refused, naming OIDC_CERTS_URL and ENV, unless ENV=dev (the tasks emulator's)."""
    for env in ({}, {"ENV": "prod"}):
        with pytest.raises(ConfigError) as caught:
            load_settings({"DATABASE_URL": URL, "OIDC_CERTS_URL": LOCAL_CERTS, **env})
        assert caught.value.variable == "OIDC_CERTS_URL" and "ENV=dev" in str(caught.value)
    dev = load_settings({"DATABASE_URL": URL, "OIDC_CERTS_URL": LOCAL_CERTS, "ENV": "dev"})
    assert dev.oidc_certs_url == LOCAL_CERTS
    google = load_settings({"DATABASE_URL": URL, "OIDC_CERTS_URL": PRODUCTION_CERTS_URL})
    assert google.env == "prod" and google.oidc_certs_url == PRODUCTION_CERTS_URL


def test_the_understanding_model_is_off_by_default_and_validated() -> None:
    """Unset: rules only. Set: it needs a project (its own or GOOGLE_CLOUD_PROJECT); a local
    model server only with ENV=dev; timeouts are seconds within bounds."""
    assert load_settings({"DATABASE_URL": URL}).understanding_model is None
    model = {"DATABASE_URL": URL, "UNDERSTANDING_MODEL": "gemini-2.5-flash"}
    with pytest.raises(ConfigError) as caught:
        load_settings(model)
    assert caught.value.variable == "UNDERSTANDING_PROJECT"
    found = load_settings({**model, "GOOGLE_CLOUD_PROJECT": "inn-prod"})
    assert (found.understanding_project, found.understanding_location) == (
        "inn-prod",
        "southamerica-east1",
    )
    assert (found.understanding_timeout_seconds, found.transcription_timeout_seconds) == (3, 20)
    local = {**model, "UNDERSTANDING_PROJECT": "p", "UNDERSTANDING_BASE_URL": "http://127.0.0.1:1"}
    with pytest.raises(ConfigError) as caught:
        load_settings(local)
    assert caught.value.variable == "UNDERSTANDING_BASE_URL" and "ENV=dev" in str(caught.value)
    assert load_settings({**local, "ENV": "dev"}).understanding_base_url == "http://127.0.0.1:1"
    for name, value in (
        ("UNDERSTANDING_TIMEOUT_SECONDS", "soon"),
        ("TRANSCRIPTION_TIMEOUT_SECONDS", "90"),
    ):
        with pytest.raises(ConfigError) as caught:
            load_settings({"DATABASE_URL": URL, name: value})
        assert caught.value.variable == name


@pytest.mark.parametrize(("ttl", "grace"), [("2100", "300"), ("1800", "0"), ("2400", "600")])
def test_hold_ttl_must_exceed_stripes_minimum_plus_the_grace(ttl: str, grace: str) -> None:
    """A hold no longer than Stripe's 30-minute Checkout minimum plus CHECKOUT_GRACE_SECONDS
    could expire under a guest still paying: refused, naming both variables and the values."""
    env = {"DATABASE_URL": URL, "HOLD_TTL_SECONDS": ttl, "CHECKOUT_GRACE_SECONDS": grace}
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    message = str(caught.value)
    assert caught.value.variable == "HOLD_TTL_SECONDS" and "CHECKOUT_GRACE_SECONDS" in message
    assert f"got {ttl}" in message and f"{1800 + int(grace)} s" in message
    longer = load_settings({**env, "HOLD_TTL_SECONDS": str(1800 + int(grace) + 1)})
    assert longer.hold_ttl_seconds == 1800 + int(grace) + 1


HOLD_ARGS = ("dev", "hold", "--property", "p", "--room-type", "r")
HOLD_DATES = ("--checkin", "2027-01-10", "--checkout", "2027-01-12")


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (("check-config",), {"OIDC_CERTS_URL": LOCAL_CERTS}, ("OIDC_CERTS_URL", "ENV")),
        (("serve",), {"ROLE": "worker", "HOLD_TTL_SECONDS": "1900"}, ("HOLD_TTL_SECONDS",)),
        ((*HOLD_ARGS, *HOLD_DATES), {"ENV": "prod"}, ("ENV=dev",)),
    ],
)
def test_each_guard_stops_the_cli_with_one_line(
    args: tuple[str, ...], env: dict[str, str], named: tuple[str, ...], tmp_path: Path
) -> None:
    """Each guard stops its command with exit 2 and exactly one stderr line naming what is
    wrong, no traceback, nothing on stdout; `ENV=prod … dev hold` is refused even though
    .env.example (read under the real environment for dev commands) says ENV=dev."""
    result = run_cli(*args, env=app_env(DATABASE_URL=URL, HOTELLY_LOCAL_DIR=str(tmp_path), **env))
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and all(name in lines[0] for name in named), result.stderr


def test_dev_commands_take_env_dev_from_env_example(tmp_path: Path) -> None:
    """With no ENV set, a dev command beside the repository runs as make run does: ENV=dev
    from .env.example, so it goes past the guard (and then wants make run's database)."""
    result = run_cli(*HOLD_ARGS, *HOLD_DATES, env=app_env(HOTELLY_LOCAL_DIR=str(tmp_path)))
    assert result.returncode == 2
    assert "ENV=dev" not in result.stderr and "DATABASE_URL" in result.stderr
