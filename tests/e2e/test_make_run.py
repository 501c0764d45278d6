"""What `make run` promises, as a person would do it: start the stack (`dev up`), talk to the
inn with `dev whatsapp`, read the replies with `dev transcript`, pay with `dev pay`, and see
the confirmation. Every process the stack starts writes to one captured output, which must
carry none of the guest's number, name or words."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import orjson
import pytest
from dotenv import dotenv_values

from app.dev.postgres import free_port
from tests.support import ROOT, app_env, eventually, sample_stay

PHONE = "+5511977776666"
EVO_PHONE = "+5511922221111"
TEXTS = ("Olá, tem quarto de {checkin} a {checkout} para 2 pessoas?", "quero o 1")


def ports_env(**values: str) -> dict[str, str]:
    """A clean environment giving make run's processes free ports; everything else comes
    from .env.example, as for a person running `make run`."""
    ports = {
        name: free_port() for name in ("public", "worker", "tasks", "certs", "stripe", "graph")
    }
    worker_url = f"http://127.0.0.1:{ports['worker']}"
    return app_env(
        **values,
        PUBLIC_PORT=str(ports["public"]),
        WORKER_PORT=str(ports["worker"]),
        PUBLIC_URL=f"http://127.0.0.1:{ports['public']}",
        WORKER_URL=worker_url,
        OIDC_AUDIENCE=worker_url,
        TASKS_EMULATOR_HOST=f"127.0.0.1:{ports['tasks']}",
        OIDC_CERTS_URL=f"http://127.0.0.1:{ports['certs']}/oauth2/v1/certs",
        ENV="dev",  # the emulator's certificates are trusted only there
        STRIPE_API_BASE=f"http://127.0.0.1:{ports['stripe']}",
        WHATSAPP_API_BASE=f"http://127.0.0.1:{ports['graph']}/v21.0",
    )


@pytest.fixture
def stack_env(db_url: str) -> dict[str, str]:
    return ports_env(DATABASE_URL=db_url)


@contextlib.contextmanager
def dev_up(env: dict[str, str], log_path: Path) -> Iterator[None]:
    """`python -m app dev up`, every process's output into ``log_path``, stopped on exit."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "dev", "up"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        asyncio.run(_wait_ready(env["PUBLIC_URL"], env["WORKER_URL"], process, log_path))
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def _wait_ready(
    public: str, worker: str, process: subprocess.Popen[bytes], log_path: Path
) -> None:
    """Both roles ready, and the stack itself up: until it logs stack_up it is still
    starting its table and does not yet watch (restart) what it started."""

    async def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"dev up exited with {process.returncode}")
        try:
            async with httpx.AsyncClient() as http:
                answers = [await http.get(f"{base}/ready") for base in (public, worker)]
        except httpx.TransportError:
            return False
        if not all(answer.status_code == 200 for answer in answers):
            return False
        return b'"stack_up"' in await asyncio.to_thread(log_path.read_bytes)

    await eventually(up, within=60, interval=0.2)


def _cli(env: dict[str, str], *args: str) -> tuple[int, list[str]]:
    result = subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result.returncode, result.stdout.strip().splitlines()


def _transcript(env: dict[str, str], outbound: int, phone: str = PHONE) -> list[str]:
    async def enough() -> list[str]:
        code, lines = await asyncio.to_thread(_cli, env, "dev", "transcript", "--from", phone)
        assert code == 0
        return lines if orjson.loads(lines[-1])["outbound"] >= outbound else []

    return asyncio.run(eventually(enough, within=30, interval=0.3))


def test_a_guest_books_through_make_run(stack_env: dict[str, str], tmp_path: Path) -> None:
    checkin, checkout = sample_stay(2)
    said = [
        TEXTS[0].format(checkin=f"{checkin:%d/%m/%Y}", checkout=f"{checkout:%d/%m/%Y}"),
        TEXTS[1],
    ]
    log_path = tmp_path / "stack.log"
    with dev_up(stack_env, log_path):
        code, out = _cli(stack_env, "dev", "whatsapp", "--from", PHONE, said[0])
        assert code == 0 and orjson.loads(out[-1])["webhook_status"] == 200
        assert " out " in _transcript(stack_env, 1)[1]

        assert _cli(stack_env, "dev", "whatsapp", "--from", PHONE, said[1])[0] == 0
        session = re.search(r"cs_\w+", _transcript(stack_env, 2)[3])
        assert session is not None
        code, out = _cli(stack_env, "dev", "pay", session.group(0))
        assert code == 0 and orjson.loads(out[-1])["webhook_status"] == 200

        lines = _transcript(stack_env, 3)
        assert orjson.loads(lines[-1]) == {"messages": 5, "inbound": 2, "outbound": 3}

        # The second sample inn is on an Evolution gateway (a local fake).
        evolution = ["dev", "whatsapp", "--provider", "evolution", "--from", EVO_PHONE]
        assert _cli(stack_env, *evolution, said[0])[0] == 0
        assert " out " in _transcript(stack_env, 1, EVO_PHONE)[1]

    async def reservation_code() -> str:
        conn = await asyncpg.connect(stack_env["DATABASE_URL"])
        try:
            return str(await conn.fetchval("SELECT code FROM reservations"))
        finally:
            await conn.close()

    assert asyncio.run(reservation_code()) in lines[-2]

    output = log_path.read_text(errors="replace")
    assert "stack_up" in output and "http_request" in output  # the stack did log
    for secret in (PHONE, PHONE.lstrip("+"), PHONE[-8:], EVO_PHONE.lstrip("+"), *said):
        assert secret not in output, secret


def test_a_channel_booking_through_make_run(stack_env: dict[str, str], tmp_path: Path) -> None:
    """make run's fake channel: `dev channels book` adds a booking to the sample inn's Airbnb
    feed and `dev channels sync` imports it (one block); `ops channels` reports the
    calendars synced; `channels urls` gives feeds the public role serves; `dev channels
    cancel` and another sync release the nights."""
    today = dt.datetime.now(ZoneInfo("America/Sao_Paulo")).date()
    where = ["--property", "pousada-mare-alta", "--calendar", "airbnb-standard"]
    dates = [
        "--checkin",
        (today + dt.timedelta(days=30)).isoformat(),
        "--checkout",
        (today + dt.timedelta(days=33)).isoformat(),
    ]
    # `channels urls` is no dev command: it needs the key make run's services have.
    env = {**stack_env, "ICAL_SECRET": str(dotenv_values(ROOT / ".env.example")["ICAL_SECRET"])}

    async def blocks(status: str) -> int:
        conn = await asyncpg.connect(env["DATABASE_URL"])
        try:
            return int(await conn.fetchval("SELECT count(*) FROM blocks WHERE status = $1", status))
        finally:
            await conn.close()

    with dev_up(env, tmp_path / "stack.log"):
        code, out = _cli(env, "dev", "channels", "book", *where, *dates)
        assert code == 0, out
        uid = orjson.loads(out[-1])["uid"]
        code, out = _cli(env, "dev", "channels", "sync")
        assert code == 0 and orjson.loads(out[-1]) == {"enqueued": 1}
        assert asyncio.run(eventually(lambda: blocks("active"), within=30)) == 1

        code, out = _cli(env, "ops", "channels")
        calendars = orjson.loads(out[-1])["calendars"]
        assert code == 0 and {c["calendar"] for c in calendars} >= {"airbnb-standard"}
        code, out = _cli(env, "channels", "urls", "--property", "pousada-mare-alta")
        assert code == 0
        for line in out[:-1]:
            feed = httpx.get(orjson.loads(line)["url"])
            assert feed.status_code == 200 and feed.text.startswith("BEGIN:VCALENDAR")

        code, out = _cli(env, "dev", "channels", "cancel", *where, "--uid", uid)
        assert code == 0
        assert _cli(env, "dev", "channels", "sync")[0] == 0
        assert asyncio.run(eventually(lambda: blocks("released"), within=30)) == 1


MONTHS = {
    "pt": "janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro "
    "dezembro",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre "
    "diciembre",
}


def test_a_question_about_the_dates_is_answered_and_booked_through_make_run(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    """ "The 15th or the 16th": in pt, es and en the bot asks which, offering both; the
    guest's pick completes the stay, the quote restates it with the party, and the booking
    goes through to the payment's confirmation."""
    today = dt.datetime.now(ZoneInfo("America/Sao_Paulo")).date()
    month = (today + dt.timedelta(days=45)).replace(day=1)
    names = {lang: words.split()[month.month - 1] for lang, words in MONTHS.items()}
    guests = [  # (phone, first message, the pick, what the quote must start with)
        (
            "+5511977770001",
            f"Oi! Chegamos dia 15 ou 16 de {names['pt']} e saimos dia 19, 2 adultos e 1 "
            "criança de 5",
            "2",
            f"Para 2 adultos e 1 criança (5 anos), de {month:16/%m/%Y} a {month:19/%m/%Y} "
            "(3 noites):",
        ),
        (
            "+5491177770002",
            f"Hola! llegamos el 15 o 16 de {names['es']} hasta el 19, somos 2",
            "1",
            f"Para 2 personas, del {month:15/%m/%Y} al {month:19/%m/%Y} (4 noches):",
        ),
        (
            "+15557770003",
            f"Hi! arriving the 15th or 16th of {month:%B}, leaving the 19th, 2 adults",
            "the second",
            f"For 2 guests, {month:%B} 16, {month.year} to {month:%B} 19, {month.year} (3 nights):",
        ),
    ]
    with dev_up(stack_env, tmp_path / "stack.log"):
        for phone, first, pick, quoted in guests:
            assert _cli(stack_env, "dev", "whatsapp", "--from", phone, first)[0] == 0
            question = _transcript(stack_env, 1, phone)[1]
            assert "\\n1. " in question and "\\n2. " in question, question
            assert _cli(stack_env, "dev", "whatsapp", "--from", phone, pick)[0] == 0
            quote = _transcript(stack_env, 2, phone)[3]
            assert quote.split(" out ", 1)[1].startswith(quoted), quote
            assert _cli(stack_env, "dev", "whatsapp", "--from", phone, "1")[0] == 0
            session = re.search(r"cs_\w+", _transcript(stack_env, 3, phone)[5])
            assert session is not None
            code, out = _cli(stack_env, "dev", "pay", session.group(0))
            assert code == 0 and orjson.loads(out[-1])["webhook_status"] == 200
            lines = _transcript(stack_env, 4, phone)
            assert orjson.loads(lines[-1]) == {"messages": 7, "inbound": 3, "outbound": 4}
