"""`make run` keeps its processes running: a child that dies is logged once, started again
after a short backoff, and the stack answers end to end again, as Cloud Run replaces an
instance that crashed."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest

from tests.e2e.test_make_run import TEXTS, _cli, dev_up, ports_env
from tests.support import eventually

AFTER_WORKER = "+5511966665555"
AFTER_EMULATOR = "+5511955554444"


@pytest.fixture
def stack_env(db_url: str) -> dict[str, str]:
    """make run's environment on free ports, with this test's database."""
    return ports_env(DATABASE_URL=db_url)


def _lines(log_path: Path, message: str) -> list[dict[str, Any]]:
    """The JSON log lines of the stack's captured output whose message is ``message``."""
    found = []
    for line in log_path.read_bytes().splitlines():
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # not a log line of ours
        if isinstance(record, dict) and record.get("message") == message:
            found.append(record)
    return found


def _pids(log_path: Path, child: str) -> list[int]:
    """Every pid the stack started ``child`` with, oldest first."""
    return [
        int(line["pid"])
        for line in _lines(log_path, "stack_process_started")
        if line.get("child") == child
    ]


def _kill_and_wait_restart(log_path: Path, child: str) -> int:
    """SIGKILL the child's current process; returns the pid the stack started it again with."""
    old = _pids(log_path, child)[-1]
    os.kill(old, signal.SIGKILL)

    async def restarted() -> int | None:
        pids = _pids(log_path, child)
        return pids[-1] if pids[-1] != old else None

    new = asyncio.run(eventually(restarted, within=30, interval=0.1))
    assert new != old
    return new


def _answers(url: str) -> None:
    async def ok() -> bool:
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                return (await http.get(url)).status_code == 200
        except httpx.TransportError:
            return False

    asyncio.run(eventually(ok, within=60, interval=0.2))


def _accepts_connections(host_port: str) -> None:
    host, port = host_port.rsplit(":", 1)

    async def listening() -> bool:
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                return True
        except OSError:
            return False

    asyncio.run(eventually(listening, within=30, interval=0.1))


def _guest_gets_a_reply(env: dict[str, str], phone: str, within: float = 30) -> None:
    """A guest's quote request through `dev whatsapp` is acknowledged, and `dev transcript`
    shows the inn's reply within ``within`` seconds."""
    checkin = dt.datetime.now(ZoneInfo("America/Sao_Paulo")).date() + dt.timedelta(days=20)
    text = TEXTS[0].format(
        checkin=f"{checkin:%d/%m/%Y}", checkout=f"{checkin + dt.timedelta(days=2):%d/%m/%Y}"
    )
    code, out = _cli(env, "dev", "whatsapp", "--from", phone, text)
    assert code == 0 and orjson.loads(out[-1])["webhook_status"] == 200, out

    async def answered() -> list[str]:
        code, lines = await asyncio.to_thread(_cli, env, "dev", "transcript", "--from", phone)
        assert code == 0
        return lines if orjson.loads(lines[-1])["outbound"] >= 1 else []

    lines = asyncio.run(eventually(answered, within=within, interval=0.3))
    assert " in " in lines[0] and " out " in lines[1]


def test_a_killed_child_is_restarted_and_the_stack_answers_again(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    """SIGKILL the worker: the stack logs `stack_process_restarting` for it, starts it again
    under a new pid, its /ready answers 200 and a guest's message gets its reply. SIGKILL
    the local Cloud Tasks: it is started again too, its gRPC port and certificates answer,
    and a second guest's message still gets its reply. One restart line per kill, and no
    other child was restarted."""
    log_path = tmp_path / "stack.log"
    with dev_up(stack_env, log_path):
        started = {line["child"]: line["pid"] for line in _lines(log_path, "stack_process_started")}
        assert {"worker", "public", "tasks_emulator", "fake_stripe", "fake_graph"} <= set(started)

        _kill_and_wait_restart(log_path, "worker")
        _answers(f"{stack_env['WORKER_URL']}/ready")
        _guest_gets_a_reply(stack_env, AFTER_WORKER)

        _kill_and_wait_restart(log_path, "tasks_emulator")
        _accepts_connections(stack_env["TASKS_EMULATOR_HOST"])
        _answers(stack_env["OIDC_CERTS_URL"])
        # It signs with the key it kept (the worker's cached certificate stays good), so
        # the reply comes as quickly as before the crash.
        _guest_gets_a_reply(stack_env, AFTER_EMULATOR)

    # One line per death: the kill, and any start that failed before one took (a busy
    # machine may make a restarted server's first start fail; it is retried the same way).
    restarting = _lines(log_path, "stack_process_restarting")
    killed = [line for line in restarting if line["exit_code"] == -signal.SIGKILL]
    assert [line["child"] for line in killed] == ["worker", "tasks_emulator"], restarting
    assert {line["child"] for line in restarting} == {"worker", "tasks_emulator"}, restarting
    for child, pid in started.items():
        deaths = sum(1 for line in restarting if line["child"] == child)
        if child in ("worker", "tasks_emulator"):
            assert len(_pids(log_path, child)) == 1 + deaths, child
        else:
            assert _pids(log_path, child) == [pid], child  # never restarted
