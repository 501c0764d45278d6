"""Migrations are expand/contract: the revision still serving keeps working on the newest schema.

Cloud Run keeps the previous revision serving until the new one is ready, and the deploy's
migration job runs before the new revision takes traffic, so for a while the previous code
runs on the new schema (the rule: sql/migrations/README.md). This test puts it there: it
finds with git the revision the newest migration came after, extracts that revision's code,
and runs it, both roles as `python -m app serve` and its own `dev` commands, against a
database the current migrations built, with the current tree's fakes (Cloud Tasks, Stripe,
Graph). Nothing here is of the old revision but its code.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import subprocess
import sys
import tarfile
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from packaging.requirements import Requirement
from yoyo import read_migrations

from app import db
from app.dev.fake_graph import FakeGraph, inbound_envelope, signature
from app.dev.fake_stripe import FakeStripe
from app.dev.postgres import free_port
from app.dev.tasks_emulator import TasksEmulator
from app.migrate import MIGRATIONS_DIR
from tests.e2e.conftest import (
    APP_SECRET,
    CONTACT_HASH_KEY,
    GRAPH_TOKEN,
    PII_KEY,
    SERVICE_ACCOUNT,
    STRIPE_KEY,
    VERIFY_TOKEN,
    WEBHOOK_SECRET,
)
from tests.inventory.conftest import make_calendar
from tests.support import ROOT, app_env, eventually

# What the old revision's serve and dev commands read besides app/ (named queries and
# migrations, the runbook's SQL, the sample inns); a path it does not have is skipped.
EXTRACTED = ("app", "sql", "docs/operations/sql", "docs/examples")
# A server's start-up is imports and a pool: seconds on the 2-core CI machine.
START_WITHIN = 30.0
# A task's round trip through the emulator and the worker takes well under a second; the
# margin covers a loaded machine.
PROCESSED_WITHIN = 15.0


def _git(*args: str) -> str:
    """Run git in the repository; any failure ends the test with git's one-line reason."""
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=30
        )
    except FileNotFoundError:
        pytest.fail("git is not installed: the expand/contract test reads the history")
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.fail(f"git {' '.join(args)} failed: {reason}")
    return done.stdout.strip()


def _previous_revision() -> tuple[str, str]:
    """(newest migration id, the revision serving when it is deployed): the parent of the
    commit that added the migration, or HEAD while that migration is not committed yet."""
    if _git("rev-parse", "--is-shallow-repository") == "true":
        pytest.fail(
            "shallow clone: the expand/contract test needs the history of sql/migrations "
            "(git fetch --unshallow)"
        )
    newest = max(read_migrations(str(MIGRATIONS_DIR)), key=lambda migration: migration.id)
    path = Path(newest.path).relative_to(ROOT).as_posix()
    added = _git("log", "--no-renames", "--diff-filter=A", "-1", "--format=%H", "--", path)
    if not added:
        return newest.id, _git("rev-parse", "HEAD")
    parents = _git("rev-list", "--parents", "-1", added).split()[1:]
    if not parents:
        pytest.fail(f"{path} came with the first commit: no earlier revision to keep serving")
    return newest.id, parents[0]


def _check_dependencies(revision: str) -> None:
    """The old code runs on this venv's packages: each runtime requirement of its
    pyproject.toml must be installed in a version it accepts."""
    project = tomllib.loads(_git("show", f"{revision}:pyproject.toml"))["project"]
    unmet = []
    for line in project["dependencies"]:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            unmet.append(f"{requirement} (not installed)")
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            unmet.append(f"{requirement} (installed: {installed})")
    if unmet:
        pytest.fail(
            f"the previous revision {revision[:12]} needs {', '.join(unmet)}; this test runs "
            "it on the venv's packages, so it cannot run it as production would"
        )


def _extract(revision: str, into: Path) -> Path:
    present = _git("ls-tree", "--name-only", revision, "--", *EXTRACTED).split()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision, "--", *present],
        capture_output=True,
        check=True,
        timeout=60,
    )
    into.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


@dataclass
class OldStack:
    tree: Path
    env: dict[str, str]  # of the old dev commands; each server's adds ROLE and PORT
    public: str
    worker: str
    graph: FakeGraph


def _env(
    tree: Path, db_url: str, public: str, worker: str, fakes: tuple[str, str, str, str]
) -> dict[str, str]:
    emulator_host, certs_url, stripe_base, graph_base = fakes
    return app_env(
        # The old tree first: `python -m app` must import its app/, not the venv's
        # editable install of this one (checked by _imported_app).
        PYTHONPATH=str(tree),
        HOTELLY_LOCAL_DIR=str(tree / ".local"),  # never a running make run's database
        ENV="dev",
        HOST="127.0.0.1",
        DATABASE_URL=db_url,
        DB_POOL_MAX="2",
        PUBLIC_URL=public,
        STRIPE_SECRET_KEY=STRIPE_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_API_BASE=stripe_base,
        TASKS_PROJECT="hotelly-test",
        TASKS_LOCATION="southamerica-east1",
        TASKS_EMULATOR_HOST=emulator_host,
        WORKER_URL=worker,
        TASKS_SERVICE_ACCOUNT=SERVICE_ACCOUNT,
        OIDC_AUDIENCE=worker,
        OIDC_ALLOWED_EMAILS=SERVICE_ACCOUNT,
        OIDC_CERTS_URL=certs_url,
        WHATSAPP_VERIFY_TOKEN=VERIFY_TOKEN,
        WHATSAPP_APP_SECRET=APP_SECRET,
        WHATSAPP_ACCESS_TOKEN=GRAPH_TOKEN,
        WHATSAPP_API_BASE=graph_base,
        PII_KEY=PII_KEY,
        CONTACT_HASH_KEY=CONTACT_HASH_KEY,
    )


async def _up(base: str, server: asyncio.subprocess.Process, log: Path) -> None:
    async def answers() -> bool:
        if server.returncode is not None:
            # The dead server's log, read once as the test fails.
            output = log.read_text()[-2000:]  # noqa: ASYNC240
            raise AssertionError(f"{base} exited {server.returncode}: {output}")
        try:
            async with httpx.AsyncClient(timeout=1) as http:
                return (await http.get(f"{base}/health")).status_code == 200
        except httpx.TransportError:
            return False

    await eventually(answers, within=START_WITHIN, interval=0.05)


@contextlib.asynccontextmanager
async def _old_stack(tree: Path, db_url: str) -> AsyncIterator[OldStack]:
    """The old revision's worker and public role, served against the current fakes."""
    emulator = TasksEmulator(
        grpc_port=free_port(), certs_port=free_port(), min_backoff=0.05, max_backoff=0.4
    )
    fake_stripe = FakeStripe(port=free_port(), api_key=STRIPE_KEY)
    graph = FakeGraph(port=free_port(), access_token=GRAPH_TOKEN)
    ports = {"worker": free_port(), "public": free_port()}
    urls = {role: f"http://127.0.0.1:{port}" for role, port in ports.items()}
    fakes = (emulator.host, emulator.certs_url, fake_stripe.base_url, graph.base_url)
    env = _env(tree, db_url, urls["public"], urls["worker"], fakes)
    servers: list[asyncio.subprocess.Process] = []
    await emulator.start()
    await fake_stripe.start()
    await graph.start()
    try:
        for role, port in ports.items():
            log = tree / f"{role}.log"
            with log.open("wb") as out:
                servers.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "app",
                        "serve",
                        env={**env, "ROLE": role, "PORT": str(port)},
                        cwd=tree,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        await asyncio.gather(
            *(
                _up(url, server, tree / f"{role}.log")
                for (role, url), server in zip(urls.items(), servers, strict=True)
            )
        )
        yield OldStack(tree, env, urls["public"], urls["worker"], graph)
    finally:
        for server in servers:
            if server.returncode is None:
                server.terminate()
        for server in servers:
            try:
                await asyncio.wait_for(server.wait(), 10)
            except TimeoutError:
                server.kill()
                await server.wait()
        await graph.stop()
        await fake_stripe.stop()
        await emulator.stop()


async def _old_cli(stack: OldStack, *args: str) -> dict[str, Any]:
    """Run the old revision's `python -m app …`; its last line is its JSON result."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        *args,
        env=stack.env,
        cwd=stack.tree,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()[-2000:]
    result: dict[str, Any] = orjson.loads(out.decode().strip().splitlines()[-1])
    return result


def _imported_app(tree: Path, env: dict[str, str]) -> Path:
    """Where `app` comes from for a process started as the servers are."""
    done = subprocess.run(
        [sys.executable, "-c", "import app; print(app.__file__)"],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return Path(done.stdout.strip()).parent


def test_migrations_readme_is_not_a_migration() -> None:
    """yoyo reads only the .sql (and .py) files of sql/migrations: the README there, which
    states the expand/contract rule, is never applied."""
    read = sorted(Path(migration.path).name for migration in read_migrations(str(MIGRATIONS_DIR)))
    assert (MIGRATIONS_DIR / "README.md").is_file()
    assert read == sorted(path.name for path in MIGRATIONS_DIR.glob("*.sql"))


async def test_previous_revision_serves_on_the_newest_migration(
    db_url: str, tmp_path: Path
) -> None:
    """The revision before the newest migration's commit, run from its own tree on a
    database with every current migration applied: both roles answer /health and /ready;
    its public role takes a signed WhatsApp message and a signed Stripe event, records and
    enqueues them, and its worker processes both (the guest gets a reply); a hold made by
    its `dev hold` and paid by its `dev pay` becomes a confirmed reservation."""
    latest, revision = _previous_revision()
    _check_dependencies(revision)
    tree = _extract(revision, tmp_path / "previous")
    conn = await db.connect(db_url)
    try:
        applied = await conn.fetchval("SELECT array_agg(migration_id) FROM _yoyo_migration")
        assert latest in applied
        cal = await make_calendar(conn, [("std", 2, 2, 30000)], days=10)
    finally:
        await conn.close()

    async with _old_stack(tree, db_url) as old:
        assert _imported_app(tree, old.env) == tree / "app"
        async with httpx.AsyncClient(timeout=10) as http:
            for base in (old.public, old.worker):
                for path in ("/health", "/ready"):
                    answer = await http.get(f"{base}{path}")
                    assert answer.status_code == 200, (base, path, answer.text)
            envelope = inbound_envelope(
                str(cal.property.whatsapp_phone_number_id), "5511999990000", "Oi"
            )
            body = orjson.dumps(envelope)
            answer = await http.post(
                f"{old.public}/webhooks/whatsapp/meta",
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Hub-Signature-256": signature(body, APP_SECRET),
                },
            )
            assert answer.status_code == 200, answer.text
        message_id = envelope["entry"][0]["changes"][0]["value"]["messages"][0]["id"]

        checkin = cal.start + dt.timedelta(days=2)
        held = await _old_cli(
            old,
            "dev",
            "hold",
            "--property",
            cal.property.code,
            "--room-type",
            "std",
            "--checkin",
            checkin.isoformat(),
            "--checkout",
            (checkin + dt.timedelta(days=2)).isoformat(),
        )
        paid = await _old_cli(old, "dev", "pay", held["hold_id"])
        assert paid["webhook_status"] == 200

        check = await db.connect(db_url)
        try:

            async def processed(source: str, external_id: str) -> bool:
                return bool(
                    await check.fetchval(
                        "SELECT processed_at IS NOT NULL FROM processed_events"
                        " WHERE source = $1 AND external_id = $2",
                        source,
                        external_id,
                    )
                )

            await eventually(lambda: processed("stripe", paid["event_id"]), within=PROCESSED_WITHIN)
            status = await check.fetchval(
                "SELECT status FROM reservations WHERE hold_id = $1::uuid", held["hold_id"]
            )
            assert status == "confirmed"
            await eventually(lambda: processed("whatsapp", message_id), within=PROCESSED_WITHIN)

            async def replied() -> bool:
                return bool(old.graph.sent)

            await eventually(replied, within=PROCESSED_WITHIN)
        finally:
            await check.close()
