"""Settings parsed once from the environment into a frozen object.

Nothing reads ``os.environ`` after start-up: the CLI calls ``load_settings`` and
passes the result down. A missing or malformed variable raises ``ConfigError``
naming it; the CLI turns that into one line on stderr and exit code 2.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

ROLES = ("public", "worker")


class ConfigError(Exception):
    """A configuration variable is missing or malformed."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True)
class Secret:
    """A value that never shows itself in repr(), str() or logs."""

    _value: str = field(repr=False)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


@dataclass(frozen=True)
class Settings:
    database_url: Secret
    role: str | None = None
    host: str = "0.0.0.0"
    port: int = 8080
    db_pool_max: int = 10
    log_level: str = "INFO"
    # Used only to build the full `logging.googleapis.com/trace` value.
    google_cloud_project: str | None = None
    # 40 min: Stripe's shortest Checkout Session (30 min) plus a grace period, so a
    # guest paying at the last second still finds the nights held.
    hold_ttl_seconds: int = 2400


def _text(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = env.get(name, "").strip()
    return value or default


def _required(env: Mapping[str, str], name: str) -> str:
    value = _text(env, name)
    if value is None:
        raise ConfigError(name, "is required but not set")
    return value


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be an integer (got {raw!r})") from None
    if not lo <= value <= hi:
        raise ConfigError(name, f"must be between {lo} and {hi} (got {value})")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    value = _text(env, name)
    if value is not None and value not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)} (got {value!r})")
    return value


def load_settings(env: Mapping[str, str] | None = None, *, require_role: bool = False) -> Settings:
    """Parse and validate every variable; ``require_role`` is set by ``serve`` only."""
    env = os.environ if env is None else env
    database_url = _required(env, "DATABASE_URL")
    if not database_url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("DATABASE_URL", "must be a postgresql:// URL")
    role = _choice(env, "ROLE", ROLES)
    if require_role and role is None:
        raise ConfigError("ROLE", f"is required to serve: one of {', '.join(ROLES)}")
    level = (_text(env, "LOG_LEVEL", "INFO") or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("LOG_LEVEL", f"must be DEBUG, INFO, WARNING or ERROR (got {level!r})")
    return Settings(
        database_url=Secret(database_url),
        role=role,
        host=_text(env, "HOST", "0.0.0.0") or "0.0.0.0",
        port=_int(env, "PORT", 8080, 1, 65535),
        db_pool_max=_int(env, "DB_POOL_MAX", 10, 1, 1000),
        log_level=level,
        google_cloud_project=_text(env, "GOOGLE_CLOUD_PROJECT"),
        hold_ttl_seconds=_int(env, "HOLD_TTL_SECONDS", 2400, 60, 86_400),
    )
