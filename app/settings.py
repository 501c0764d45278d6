"""Settings parsed once from the environment into a frozen object.

Nothing reads ``os.environ`` after start-up: the CLI calls ``load_settings`` and
passes the result down. A missing or malformed variable raises ``ConfigError``
naming it; the CLI turns that into one line on stderr and exit code 2.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

ROLES = ("public", "worker")
ENVIRONMENTS = ("prod", "dev")
# Google's certificates, which sign Cloud Tasks' and Cloud Scheduler's OIDC tokens.
PRODUCTION_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
# Stripe refuses a Checkout Session that expires sooner than 30 minutes after its creation.
STRIPE_MIN_SESSION_SECONDS = 1800


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
    # dev relaxes what only a developer's machine needs (plain http and local servers for
    # channel feeds); production never sets it.
    env: str = "prod"
    host: str = "0.0.0.0"
    port: int = 8080
    db_pool_max: int = 10
    log_level: str = "INFO"
    # Used only to build the full `logging.googleapis.com/trace` value.
    google_cloud_project: str | None = None
    # 40 min: Stripe's shortest Checkout Session (30 min) plus a grace period, so a
    # guest paying at the last second still finds the nights held.
    hold_ttl_seconds: int = 2400
    # Where `dev` commands reach the public role.
    public_url: str = "http://127.0.0.1:8080"
    # Payments (Stripe).
    stripe_secret_key: Secret | None = None
    stripe_webhook_secret: Secret | None = None
    stripe_api_base: str = "https://api.stripe.com"
    checkout_payment_methods: tuple[str, ...] = ("card",)
    # The Checkout Session closes this long before its hold expires, so a payment
    # started at the last second still lands on a held room.
    checkout_grace_seconds: int = 300
    checkout_success_url: str = "https://hotelly.app/paid"
    auto_refund_late_payments: bool = False
    # Cloud Tasks and the worker's OIDC identity.
    tasks_project: str | None = None
    tasks_location: str | None = None
    tasks_emulator_host: str | None = None
    worker_url: str | None = None
    tasks_service_account: str | None = None
    oidc_audience: str | None = None
    oidc_allowed_emails: frozenset[str] = frozenset()
    oidc_certs_url: str = PRODUCTION_CERTS_URL
    # WhatsApp (Meta Cloud API).
    whatsapp_verify_token: Secret | None = None
    whatsapp_app_secret: Secret | None = None
    whatsapp_access_token: Secret | None = None
    whatsapp_api_base: str = "https://graph.facebook.com/v21.0"
    # PII: AES-GCM key for phone numbers and message texts (at rest and in task bodies),
    # and the HMAC key of contact_hash, the only contact identity logs and events carry.
    pii_key: Secret | None = None
    contact_hash_key: Secret | None = None
    # How long the bot stays silent in a conversation handed to the inn's staff, unless a
    # staff member sends "#bot" sooner.
    handoff_timeout_seconds: int = 4 * 3600
    # A receipt not processed this long after its task was enqueued may have lost it: the
    # re-drive then asks Cloud Tasks, and enqueues it again if the task is gone. Longer
    # than a task's usual retries take, so a task merely backing off is rarely looked up.
    receipt_redrive_seconds: int = 600
    # How long a reply's next attempt waits for the provider's status to prove that an
    # earlier attempt, whose outcome is unknown, went out (Graph's statuses come within
    # seconds); without proof by then it sends again. Counted from the uncertain attempt,
    # so the first 30 s pass anyway while that attempt's lease lapses.
    whatsapp_send_proof_seconds: int = 60
    # Channel calendars: the key of their export tokens (HMAC), so a feed's URL cannot be
    # guessed; rotating one calendar's URL needs no new key (channels rotate).
    ical_secret: Secret | None = None
    # The console's login codes are kept as HMACs under this pepper.
    console_pepper: Secret | None = None
    # The API's keys are kept as HMACs under this pepper; each key's requests a minute.
    api_key_pepper: Secret | None = None
    api_rate_per_minute: int = 120
    # A language model (Gemini on Vertex AI) where the rules give up, and for voice notes;
    # unset: rules only, and a voice note gets a "please write" reply.
    understanding_model: str | None = None
    understanding_project: str | None = None
    understanding_location: str = "southamerica-east1"
    # Only with ENV=dev: a local fake of Vertex AI, reached with stub credentials.
    understanding_base_url: str | None = None
    understanding_timeout_seconds: float = 3.0
    # Shorter than the conversation's lease (60 s), so a slow transcription cannot outlive it.
    transcription_timeout_seconds: float = 20.0


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


def _seconds(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, f"must be a number of seconds (got {raw!r})") from None
    if not lo <= value <= hi:
        raise ConfigError(name, f"must be between {lo:g} and {hi:g} (got {value:g})")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _text(env, name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(name, f"must be true or false (got {raw!r})")


def _url(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = _text(env, name, default)
    if value is not None and not value.startswith(("http://", "https://")):
        raise ConfigError(name, "must be an http(s) URL")
    return value


def _secret(env: Mapping[str, str], name: str) -> Secret | None:
    value = _text(env, name)
    return Secret(value) if value is not None else None


def _key(env: Mapping[str, str], name: str) -> Secret | None:
    """A 32-byte key, given base64-encoded (``openssl rand -base64 32``)."""
    value = _text(env, name)
    if value is None:
        return None
    try:
        key = base64.b64decode(value, validate=True)
    except binascii.Error:
        key = b""
    if len(key) != 32:
        raise ConfigError(name, "must be 32 bytes, base64-encoded (openssl rand -base64 32)")
    return Secret(value)


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    value = _text(env, name)
    if value is not None and value not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)} (got {value!r})")
    return value


def load_settings(env: Mapping[str, str] | None = None, *, require_role: bool = False) -> Settings:
    """Parse and validate every variable, then the combinations production must not run
    with; ``require_role`` is set by ``serve`` only."""
    env = os.environ if env is None else env
    database_url = _required(env, "DATABASE_URL")
    if not database_url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("DATABASE_URL", "must be a postgresql:// URL")
    role = _choice(env, "ROLE", ROLES)
    if require_role and role is None:
        raise ConfigError("ROLE", f"is required to serve: one of {', '.join(ROLES)}")
    environment = environment_of(env)
    level = (_text(env, "LOG_LEVEL", "INFO") or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("LOG_LEVEL", f"must be DEBUG, INFO, WARNING or ERROR (got {level!r})")
    worker_url = _url(env, "WORKER_URL")
    settings = Settings(
        database_url=Secret(database_url),
        role=role,
        env=environment,
        host=_text(env, "HOST", "0.0.0.0") or "0.0.0.0",
        port=_int(env, "PORT", 8080, 1, 65535),
        db_pool_max=_int(env, "DB_POOL_MAX", 10, 1, 1000),
        log_level=level,
        google_cloud_project=_text(env, "GOOGLE_CLOUD_PROJECT"),
        hold_ttl_seconds=_int(env, "HOLD_TTL_SECONDS", 2400, 60, 86_400),
        public_url=_url(env, "PUBLIC_URL", "http://127.0.0.1:8080") or "",
        stripe_secret_key=_secret(env, "STRIPE_SECRET_KEY"),
        stripe_webhook_secret=_secret(env, "STRIPE_WEBHOOK_SECRET"),
        stripe_api_base=_url(env, "STRIPE_API_BASE", "https://api.stripe.com") or "",
        checkout_payment_methods=tuple(
            m.strip()
            for m in (_text(env, "CHECKOUT_PAYMENT_METHODS", "card") or "").split(",")
            if m.strip()
        ),
        checkout_grace_seconds=_int(env, "CHECKOUT_GRACE_SECONDS", 300, 0, 3600),
        checkout_success_url=_url(env, "CHECKOUT_SUCCESS_URL", "https://hotelly.app/paid") or "",
        auto_refund_late_payments=_bool(env, "AUTO_REFUND_LATE_PAYMENTS", False),
        tasks_project=_text(env, "TASKS_PROJECT"),
        tasks_location=_text(env, "TASKS_LOCATION"),
        tasks_emulator_host=_text(env, "TASKS_EMULATOR_HOST"),
        worker_url=worker_url,
        tasks_service_account=_text(env, "TASKS_SERVICE_ACCOUNT"),
        oidc_audience=_text(env, "OIDC_AUDIENCE", worker_url),
        oidc_allowed_emails=frozenset(
            e.strip() for e in (_text(env, "OIDC_ALLOWED_EMAILS", "") or "").split(",") if e.strip()
        ),
        oidc_certs_url=_url(env, "OIDC_CERTS_URL", PRODUCTION_CERTS_URL) or PRODUCTION_CERTS_URL,
        whatsapp_verify_token=_secret(env, "WHATSAPP_VERIFY_TOKEN"),
        whatsapp_app_secret=_secret(env, "WHATSAPP_APP_SECRET"),
        whatsapp_access_token=_secret(env, "WHATSAPP_ACCESS_TOKEN"),
        whatsapp_api_base=_url(env, "WHATSAPP_API_BASE", Settings.whatsapp_api_base)
        or Settings.whatsapp_api_base,
        pii_key=_key(env, "PII_KEY"),
        contact_hash_key=_key(env, "CONTACT_HASH_KEY"),
        handoff_timeout_seconds=_int(env, "HANDOFF_TIMEOUT_SECONDS", 4 * 3600, 60, 7 * 86_400),
        receipt_redrive_seconds=_int(env, "RECEIPT_REDRIVE_SECONDS", 600, 10, 86_400),
        whatsapp_send_proof_seconds=_int(env, "WHATSAPP_SEND_PROOF_SECONDS", 60, 0, 3600),
        ical_secret=_secret(env, "ICAL_SECRET"),
        console_pepper=_secret(env, "CONSOLE_PEPPER"),
        api_key_pepper=_secret(env, "API_KEY_PEPPER"),
        api_rate_per_minute=_int(env, "API_RATE_PER_MINUTE", 120, 1, 100_000),
        understanding_model=_text(env, "UNDERSTANDING_MODEL"),
        understanding_project=_text(env, "UNDERSTANDING_PROJECT")
        or _text(env, "GOOGLE_CLOUD_PROJECT"),
        understanding_location=_text(env, "UNDERSTANDING_LOCATION", "southamerica-east1")
        or "southamerica-east1",
        understanding_base_url=_url(env, "UNDERSTANDING_BASE_URL"),
        understanding_timeout_seconds=_seconds(env, "UNDERSTANDING_TIMEOUT_SECONDS", 3.0, 0.1, 30),
        transcription_timeout_seconds=_seconds(env, "TRANSCRIPTION_TIMEOUT_SECONDS", 20.0, 1, 50),
    )
    _check_oidc_certs(settings)
    _check_understanding(settings)
    _check_hold_outlives_checkout(settings)
    if role is not None and require_role:
        _require_for_role(settings)
    return settings


def environment_of(env: Mapping[str, str]) -> str:
    """``ENV``: ``dev`` on a developer's machine, ``prod`` when unset."""
    return _choice(env, "ENV", ENVIRONMENTS) or "prod"


def _check_oidc_certs(settings: Settings) -> None:
    # Whoever serves the certificates can mint tokens the worker accepts: only a developer's
    # machine may trust other keys (the tasks emulator's).
    if settings.oidc_certs_url != PRODUCTION_CERTS_URL and settings.env != "dev":
        raise ConfigError(
            "OIDC_CERTS_URL",
            f"may differ from Google's ({PRODUCTION_CERTS_URL}) only with ENV=dev "
            f"(ENV is {settings.env})",
        )


def _check_understanding(settings: Settings) -> None:
    if settings.understanding_model is not None and settings.understanding_project is None:
        raise ConfigError(
            "UNDERSTANDING_PROJECT",
            "is required with UNDERSTANDING_MODEL (or set GOOGLE_CLOUD_PROJECT)",
        )
    # A local model server is reached with stub credentials: never in production.
    if settings.understanding_base_url is not None and settings.env != "dev":
        raise ConfigError(
            "UNDERSTANDING_BASE_URL", f"may be set only with ENV=dev (ENV is {settings.env})"
        )


def _check_hold_outlives_checkout(settings: Settings) -> None:
    # The session closes CHECKOUT_GRACE_SECONDS before its hold expires and cannot close
    # sooner than Stripe's minimum, so a shorter hold could expire under a guest still paying.
    floor = STRIPE_MIN_SESSION_SECONDS + settings.checkout_grace_seconds
    if settings.hold_ttl_seconds <= floor:
        raise ConfigError(
            "HOLD_TTL_SECONDS",
            f"must exceed Stripe's {STRIPE_MIN_SESSION_SECONDS} s Checkout minimum plus "
            f"CHECKOUT_GRACE_SECONDS ({STRIPE_MIN_SESSION_SECONDS} + "
            f"{settings.checkout_grace_seconds} = {floor} s; got {settings.hold_ttl_seconds})",
        )


# What each role cannot serve without.
ROLE_REQUIREMENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "public": (
        ("stripe_webhook_secret", "STRIPE_WEBHOOK_SECRET"),
        ("tasks_project", "TASKS_PROJECT"),
        ("tasks_location", "TASKS_LOCATION"),
        ("worker_url", "WORKER_URL"),
        ("tasks_service_account", "TASKS_SERVICE_ACCOUNT"),
        ("whatsapp_verify_token", "WHATSAPP_VERIFY_TOKEN"),
        ("whatsapp_app_secret", "WHATSAPP_APP_SECRET"),
        ("pii_key", "PII_KEY"),
        ("contact_hash_key", "CONTACT_HASH_KEY"),
    ),
    "worker": (
        ("stripe_secret_key", "STRIPE_SECRET_KEY"),
        ("tasks_project", "TASKS_PROJECT"),
        ("tasks_location", "TASKS_LOCATION"),
        ("worker_url", "WORKER_URL"),
        ("tasks_service_account", "TASKS_SERVICE_ACCOUNT"),
        ("oidc_audience", "OIDC_AUDIENCE"),
        ("oidc_allowed_emails", "OIDC_ALLOWED_EMAILS"),
        ("whatsapp_access_token", "WHATSAPP_ACCESS_TOKEN"),
        ("pii_key", "PII_KEY"),
        ("contact_hash_key", "CONTACT_HASH_KEY"),
    ),
}


def _require_for_role(settings: Settings) -> None:
    assert settings.role is not None
    for attribute, variable in ROLE_REQUIREMENTS[settings.role]:
        if not getattr(settings, attribute):
            raise ConfigError(variable, f"is required to serve the {settings.role} role")
