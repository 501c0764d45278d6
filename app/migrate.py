"""`migrate`: apply sql/migrations with yoyo, serialized by a Postgres advisory lock.

yoyo's own lock is a table row; a migrator killed mid-run leaves it behind and
every later run waits for it. We take a session-level advisory lock first (it
dies with its connection), so whoever holds it may safely break yoyo's row lock.
Everything runs on yoyo's single connection.

The deploy runs this before a new revision takes traffic, while the previous one still
serves: each migration must keep that revision working (expand now, contract a release
later; the rule is sql/migrations/README.md, tests/test_expand_contract.py checks it).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import errors, sql
from yoyo import get_backend, read_migrations

from app.db import SQL_DIR

log = logging.getLogger("app.migrate")

MIGRATIONS_DIR = SQL_DIR / "migrations"
# Arbitrary but fixed: every migrator of every replica contends for this key.
ADVISORY_LOCK_KEY = 7_243_019_551


def _yoyo_url(database_url: str) -> str:
    rest = database_url.split("://", 1)[1]
    return f"postgresql+psycopg://{rest}"


def ensure_database(database_url: str) -> None:
    """Create the target database if it does not exist (local runs start empty)."""
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    try:
        psycopg.connect(database_url, connect_timeout=10).close()
        return
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True, connect_timeout=10) as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            log.info("database_created")
        except (errors.DuplicateDatabase, errors.UniqueViolation):
            pass  # a concurrent migrator created it first (the race surfaces as either)


def migrate(database_url: str) -> list[str]:
    """Apply pending migrations; returns the ids applied (empty when up to date)."""
    ensure_database(database_url)
    backend = get_backend(_yoyo_url(database_url))
    migrations = read_migrations(str(MIGRATIONS_DIR))
    backend.execute("SELECT pg_advisory_lock(:key)", {"key": ADVISORY_LOCK_KEY})
    try:
        backend.break_lock()  # a row left by a killed migrator; we hold the real lock
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        applied = [m.id for m in pending]
    finally:
        backend.execute("SELECT pg_advisory_unlock(:key)", {"key": ADVISORY_LOCK_KEY})
        backend.connection.close()
    log.info("migrations_applied", extra={"applied": applied})
    return applied
