"""Migrations: idempotent, safe concurrently, recover from a killed migrator, match schema.sql."""

from __future__ import annotations

import subprocess
import sys

import psycopg

from app.dev.schema import dump_schema
from app.migrate import migrate
from tests.support import ROOT, app_env


def _applied(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT migration_id FROM _yoyo_migration")]


def test_migrate_twice_applies_once(fresh_db_url: str) -> None:
    """The first run creates the database and applies everything; the second applies nothing."""
    first = migrate(fresh_db_url)
    assert first and first[0] == "0001_core"
    assert migrate(fresh_db_url) == []
    assert _applied(fresh_db_url) == first


def test_two_concurrent_migrators(fresh_db_url: str) -> None:
    """Two `migrate` processes started together both exit 0 and each migration runs once."""
    env = app_env(DATABASE_URL=fresh_db_url)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "app", "migrate"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [process.communicate(timeout=120) for process in processes]
    assert [p.returncode for p in processes] == [0, 0], results
    assert sorted(_applied(fresh_db_url)) == sorted(set(_applied(fresh_db_url)))
    assert "0001_core" in _applied(fresh_db_url)


def test_stale_lock_from_killed_migrator_is_broken(fresh_db_url: str) -> None:
    """A yoyo lock row left by a killed migrator does not block the next run."""
    migrate(fresh_db_url)
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, now(), 999999)")
    result = subprocess.run(
        [sys.executable, "-m", "app", "migrate"],
        env=app_env(DATABASE_URL=fresh_db_url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    with psycopg.connect(fresh_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM yoyo_lock").fetchone() == (0,)


def test_migrations_reproduce_committed_schema(fresh_db_url: str) -> None:
    """Applying every migration to an empty database gives exactly sql/schema.sql
    (regenerate with `make schema`)."""
    migrate(fresh_db_url)
    assert dump_schema(fresh_db_url) == (ROOT / "sql" / "schema.sql").read_text()
