"""Shared fixtures: one Postgres per run, a migrated template, a fresh clone per test.

With TEST_DATABASE_URL set, that server is used (it must allow CREATE DATABASE);
otherwise the suite starts its own throwaway server with room for the
concurrency tests, and removes it at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import psycopg
import pytest
from psycopg import sql

from app import db
from app.dev.postgres import start_postgres
from app.migrate import migrate
from app.ops.checks import OPS_SQL_DIR
from app.settings import Secret, Settings
from tests.support import with_database

# Room for 200 concurrent hold attempts over 64+ connections, plus servers' pools.
TEST_MAX_CONNECTIONS = 400


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """URL of the maintenance database of the server the suite uses."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    tmp = Path(tempfile.mkdtemp(prefix="hotelly-test-pg-"))
    tmp.chmod(0o755)  # the server runs as an unprivileged user when we are root
    server = start_postgres(tmp / "pg", max_connections=TEST_MAX_CONNECTIONS, durable=False)
    try:
        yield server.url("postgres")
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _admin(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def drop_database(admin_url: str, name: str) -> None:
    with _admin(admin_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def template_db(pg_admin_url: str) -> Iterator[str]:
    """A database built once by running the migrations; tests clone it."""
    name = f"hotelly_tpl_{uuid.uuid4().hex[:12]}"
    migrate(with_database(pg_admin_url, name))
    try:
        yield name
    finally:
        drop_database(pg_admin_url, name)


@pytest.fixture
def fresh_db_url(pg_admin_url: str) -> Iterator[str]:
    """An empty database (no migrations), dropped after the test."""
    name = f"hotelly_t_{uuid.uuid4().hex[:12]}"
    try:
        yield with_database(pg_admin_url, name)
    finally:
        drop_database(pg_admin_url, name)


@pytest.fixture
def db_url(pg_admin_url: str, template_db: str) -> Iterator[str]:
    """A migrated database of this test's own, cloned from the template."""
    name = f"hotelly_t_{uuid.uuid4().hex[:12]}"
    with _admin(pg_admin_url) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_db)
            )
        )
    url = with_database(pg_admin_url, name)
    try:
        yield url
        _assert_calendar_consistent(url)
    finally:
        drop_database(pg_admin_url, name)


def _assert_calendar_consistent(url: str) -> None:
    """After every test: the runbook's reconcile query finds nothing."""
    query = (OPS_SQL_DIR / "reconcile_ari_vs_holds.sql").read_text()
    with psycopg.connect(url) as check:
        rows = check.execute(query).fetchall()
    assert rows == [], f"reconcile found inconsistent nights: {rows[:5]}"


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await db.connect(db_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
def make_settings(db_url: str):  # type: ignore[no-untyped-def]
    """Settings for an app that serves; Cloud Tasks and Stripe point nowhere (contacted
    lazily, and these tests never reach them)."""

    def make(role: str = "worker", **overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": Secret(db_url),
            "role": role,
            "port": 0,
            "stripe_secret_key": Secret("sk_test_x"),
            "stripe_webhook_secret": Secret("whsec_x"),
            "tasks_project": "p",
            "tasks_location": "l",
            "tasks_emulator_host": "127.0.0.1:9",
            "worker_url": "http://127.0.0.1:9",
            "tasks_service_account": "tasks@p.iam.gserviceaccount.com",
            "oidc_audience": "http://127.0.0.1:9",
            "oidc_allowed_emails": frozenset({"tasks@p.iam.gserviceaccount.com"}),
            "whatsapp_verify_token": Secret("verify-x"),
            "whatsapp_app_secret": Secret("app-secret-x"),
            "whatsapp_access_token": Secret("graph-token-x"),
            "pii_key": Secret("aG90ZWxseS1sb2NhbC1waWkta2V5LTAxMjM0NTY3ODk="),
            "contact_hash_key": Secret("aG90ZWxseS1sb2NhbC1jb250YWN0LWhhc2gta2V5LTA="),
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return make
