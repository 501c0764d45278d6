"""Replies sent twice after a crash: ``make bench-send-crash``.

What is measured: how many of 200 replies reach the guest more than once (or never) when
the worker is killed while its sends are in flight. The whole local stack runs as
``make run`` runs it (``python -m app dev up`` with a Postgres of its own, which restarts a
killed worker), so the worker, the local Cloud Tasks and the fake providers are the real
processes. The fake provider takes each message at once but answers ANSWER_DELAY seconds
later — the window in which Graph (or an Evolution instance) has the message and the
worker has not yet written ``sent_at``.

For each provider (Meta's Cloud API, an Evolution instance): 200 replies are queued in one
conversation and relayed; the worker is SIGKILLed KILLS times, KILL_EVERY seconds apart,
the first kill while every send is waiting for its answer; then the run waits until no
reply is left queued. Duplicates are counted from what the fake provider received (every
reply's text is unique): ``duplicates`` = sends beyond the first, ``lost`` = replies never
sent. The last stdout line is JSON.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson

from app import db
from app.conversations import store
from app.db import QUERIES
from app.dev.postgres import free_port
from app.local import local_environment
from app.pii import pii_keys
from app.settings import load_settings
from app.tasks.outbox import relaying
from app.tasks.queue import TaskQueue, queue_config

REPLIES = 200
ANSWER_DELAY = 1.0
KILLS = 3
KILL_EVERY = 2.0
SETTLE_SECONDS = 300
INNS = {"meta": "pousada-mare-alta", "evolution": "pousada-recanto-evo"}
ROOT = Path(__file__).resolve().parents[1]


def _env(local: Path) -> dict[str, str]:
    ports = {n: free_port() for n in ("public", "worker", "tasks", "certs", "stripe", "graph")}
    worker = f"http://127.0.0.1:{ports['worker']}"
    values = {
        "HOTELLY_LOCAL_DIR": str(local),
        "PUBLIC_PORT": str(ports["public"]),
        "WORKER_PORT": str(ports["worker"]),
        "PUBLIC_URL": f"http://127.0.0.1:{ports['public']}",
        "WORKER_URL": worker,
        "OIDC_AUDIENCE": worker,
        "TASKS_EMULATOR_HOST": f"127.0.0.1:{ports['tasks']}",
        "OIDC_CERTS_URL": f"http://127.0.0.1:{ports['certs']}/oauth2/v1/certs",
        "STRIPE_API_BASE": f"http://127.0.0.1:{ports['stripe']}",
        "WHATSAPP_API_BASE": f"http://127.0.0.1:{ports['graph']}/v21.0",
    }
    keep = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    return {**keep, **values}


def _worker_pids(log: Path) -> list[int]:
    pids = []
    for line in log.read_text(errors="replace").splitlines():
        if '"stack_process_started"' in line and '"child":"worker"' in line:
            pids.append(int(orjson.loads(line)["pid"]))
    return pids


async def _wait(check: Any, within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {within} s")
        await asyncio.sleep(0.2)


async def _ready(env: dict[str, str]) -> bool:
    try:
        async with httpx.AsyncClient() as http:
            answers = [await http.get(f"{env[u]}/ready") for u in ("PUBLIC_URL", "WORKER_URL")]
            return all(answer.status_code == 200 for answer in answers)
    except httpx.TransportError:
        return False


GUESTS = {"meta": "5511900000001", "evolution": "5511900000002"}


async def _queue_replies(env: dict[str, str], provider: str) -> None:
    """REPLIES replies to one guest of the provider's inn, relayed at once."""
    settings = load_settings({**local_environment(), **env})
    pii = pii_keys(settings)
    guest = GUESTS[provider]
    pool = await db.create_pool(settings.database_url.reveal(), 2)
    queue = TaskQueue(queue_config(settings))
    try:
        async with pool.acquire() as conn:
            prop = await conn.fetchrow(QUERIES["property_by_code"], INNS[provider])
            contact = pii.contact_hash(guest)
            await conn.execute(QUERIES["upsert_contact"], contact, pii.encrypt(guest, "phone"))
            conversation = await conn.fetchval(QUERIES["upsert_conversation"], prop["id"], contact)
            await conn.execute(  # the guest just wrote: the 24-hour window is open
                "UPDATE conversations SET last_inbound_at = now() WHERE id = $1", conversation
            )
        async with relaying(pool, queue), pool.acquire() as conn, conn.transaction():
            for n in range(REPLIES):
                await store.insert_reply(
                    conn,
                    pii,
                    conversation,
                    f"crash-{provider}-{n}",
                    dedupe_key=f"crash:{provider}:{n}",
                )
    finally:
        await queue.close()
        await pool.close()


async def _run_provider(env: dict[str, str], log: Path, provider: str) -> dict[str, Any]:
    settings = load_settings({**local_environment(), **env})
    fake = (
        orjson.loads((ROOT / "docs/examples/property-evolution.json").read_bytes())["whatsapp"][
            "api_base"
        ]
        if provider == "evolution"
        else env["WHATSAPP_API_BASE"].rsplit("/", 1)[0]
    )
    async with httpx.AsyncClient() as http:
        await http.post(f"{fake}/_dev/delay", json={"seconds": ANSWER_DELAY})
    await _queue_replies(env, provider)
    kills = 0
    for _ in range(KILLS):
        await asyncio.sleep(ANSWER_DELAY / 2 if kills == 0 else KILL_EVERY)
        pid = _worker_pids(log)[-1]
        os.kill(pid, signal.SIGKILL)
        kills += 1
        await _wait(lambda pid=pid: _restarted(log, pid), 30, "worker restart")
    conn = await db.connect(settings.database_url.reveal())
    try:

        async def settled() -> bool:
            left = await conn.fetchval(
                "SELECT count(*) FROM messages WHERE direction = 'out' AND status = 'queued'"
            )
            return left == 0

        await _wait(settled, SETTLE_SECONDS, "replies settled")
        statuses = dict(
            await conn.fetch(
                "SELECT m.status || coalesce(': ' || m.last_error, ''), count(*)"
                " FROM messages m WHERE m.body_encrypted IS NOT NULL AND m.direction = 'out'"
                " AND m.dedupe_key LIKE 'crash:%' AND m.conversation_id IN (SELECT c.id"
                " FROM conversations c JOIN properties p ON p.id = c.property_id"
                " WHERE p.code = $1) GROUP BY 1",
                INNS[provider],
            )
        )
    finally:
        await conn.close()
    async with httpx.AsyncClient() as http:
        received = (await http.get(f"{fake}/_dev/messages")).json()["messages"]
    counts = Counter(m["text"] for m in received if m["text"].startswith(f"crash-{provider}-"))
    return {
        "replies": REPLIES,
        "kills": kills,
        "sends": sum(counts.values()),
        "duplicates": sum(n - 1 for n in counts.values()),
        "lost": REPLIES - len(counts),
        "statuses": statuses,
    }


async def _restarted(log: Path, old: int) -> bool:
    pids = _worker_pids(log)
    return bool(pids) and pids[-1] != old


async def _measure(env: dict[str, str], log: Path) -> dict[str, Any]:
    await _wait(lambda: _ready(env), 60, "stack up")
    return {provider: await _run_provider(env, log, provider) for provider in INNS}


def main() -> None:
    local = Path(tempfile.mkdtemp(prefix="hotelly-send-crash-"))
    local.chmod(0o755)
    env = _env(local)
    os.environ["HOTELLY_LOCAL_DIR"] = str(local)  # where local_environment() finds the stack
    log = local / "stack.log"
    with log.open("wb") as out:
        stack = subprocess.Popen(
            [sys.executable, "-m", "app", "dev", "up"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        result = asyncio.run(_measure(env, log))
    finally:
        stack.send_signal(signal.SIGTERM)
        try:
            stack.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
        shutil.rmtree(local, ignore_errors=True)
    for provider, figures in result.items():
        print(
            f"{provider:10} replies {figures['replies']}  kills {figures['kills']}  "
            f"sends {figures['sends']}  duplicates {figures['duplicates']}  lost {figures['lost']}"
        )
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
