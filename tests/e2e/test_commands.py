"""`dev hold`, `dev pay` and the payments ops commands, as processes against a running stack."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import sys
from typing import Any

import orjson

from app.dev.fake_evolution import FakeEvolution
from app.dev.fake_graph import inbound_envelope
from app.dev.fake_stripe import CUSTOMER, event
from app.inventory.property_file import ChildRate, PropertySpec, RoomTypeSpec, SeasonSpec
from app.inventory.setup import import_property
from tests.e2e.conftest import (
    APP_SECRET,
    CONTACT_HASH_KEY,
    PII_KEY,
    SERVICE_ACCOUNT,
    STRIPE_KEY,
    WEBHOOK_SECRET,
    Stack,
)
from tests.inventory.conftest import START, make_calendar
from tests.support import ROOT, app_env, eventually


def _env(stack: Stack) -> dict[str, str]:
    s = stack.settings
    return app_env(
        DATABASE_URL=s.database_url.reveal(),
        PUBLIC_URL=stack.public,
        STRIPE_SECRET_KEY=STRIPE_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_API_BASE=stack.stripe.base_url,
        TASKS_PROJECT=s.tasks_project or "",
        TASKS_LOCATION=s.tasks_location or "",
        TASKS_EMULATOR_HOST=stack.emulator.host,
        WORKER_URL=s.worker_url or "",
        TASKS_SERVICE_ACCOUNT=SERVICE_ACCOUNT,
        OIDC_ALLOWED_EMAILS=SERVICE_ACCOUNT,
        WHATSAPP_APP_SECRET=APP_SECRET,
        PII_KEY=PII_KEY,
        CONTACT_HASH_KEY=CONTACT_HASH_KEY,
    )


def _hold_args(start: dt.date, first: int, last: int) -> list[str]:
    return [
        "dev",
        "hold",
        "--property",
        "test-inn",
        "--room-type",
        "std",
        "--checkin",
        (start + dt.timedelta(days=first)).isoformat(),
        "--checkout",
        (start + dt.timedelta(days=last)).isoformat(),
    ]


async def _cli(stack: Stack, *args: str) -> tuple[int, dict[str, Any]]:
    """Run `python -m app …` without blocking the loop that serves the stack."""
    code, out = await _cli_output(stack, *args)
    return code, orjson.loads(out.strip().splitlines()[-1])


async def _cli_output(stack: Stack, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        *args,
        env=_env(stack),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    text = out.decode() + err.decode()
    assert "Traceback" not in text, text
    for pii in CUSTOMER.values():  # the completed session carries the customer's details
        assert pii not in text
    return process.returncode or 0, out.decode()


async def test_dev_hold_then_dev_pay_books_the_room(stack: Stack) -> None:
    """`dev hold` prints the hold and its Checkout Session as the last JSON line; `dev pay`
    completes it and Stripe's signed event makes the reservation; a sold-out night gives
    exit 1 and {"error": "unavailable"}."""
    async with stack.pool.acquire() as conn:
        cal = await make_calendar(conn, [("std", 2, 1, 30000)], days=5)
    args = _hold_args(cal.start, 0, 2)
    code, held = await _cli(stack, *args)
    assert code == 0, held
    assert held["checkout_session_id"].startswith("cs_") and held["currency"] == "brl"
    assert held["amount_total"] == 60000 and held["hold_id"] and held["expires_at"]
    code, refused = await _cli(stack, *args)
    assert code == 1 and refused["error"] == "unavailable"
    code, paid = await _cli(stack, "dev", "pay", held["hold_id"])
    assert code == 0 and paid["webhook_status"] == 200

    async def booked() -> bool:
        return bool(await stack.pool.fetchval("SELECT count(*) FROM reservations"))

    await eventually(booked)
    replay = ["--idempotency-key", "same-key"]
    code, first = await _cli(
        stack,
        *args[:-4],
        "--checkin",
        (cal.start + dt.timedelta(days=3)).isoformat(),
        "--checkout",
        (cal.start + dt.timedelta(days=4)).isoformat(),
        *replay,
    )
    code2, second = await _cli(
        stack,
        *args[:-4],
        "--checkin",
        (cal.start + dt.timedelta(days=3)).isoformat(),
        "--checkout",
        (cal.start + dt.timedelta(days=4)).isoformat(),
        *replay,
    )
    assert code == code2 == 0 and first["hold_id"] == second["hold_id"]
    assert first["checkout_session_id"] == second["checkout_session_id"]


async def test_reprocess_and_payments_without_reservation(stack: Stack) -> None:
    """A receipt that never finished is re-enqueued by `ops reprocess` under a new task
    name and processed once; a late payment shows in `ops payments-without-reservation`
    (exit 1); `ops expire-stuck` expires overdue holds."""
    async with stack.pool.acquire() as conn:
        cal = await make_calendar(conn, [("std", 2, 1, 30000)], days=5)
    code, held = await _cli(stack, *_hold_args(cal.start, 0, 1))
    assert code == 0
    payload = event(
        "checkout.session.completed", stack.stripe.complete(held["checkout_session_id"])
    )
    event_id = orjson.loads(payload)["id"]
    # Received long ago and never processed: its task was lost.
    await stack.pool.execute(
        "INSERT INTO processed_events (source, external_id, event_type, details, received_at,"
        " enqueued_at) VALUES ('stripe', $1, 'checkout.session.completed', $2,"
        " now() - interval '1 hour', now() - interval '1 hour')",
        event_id,
        {
            "object_id": held["checkout_session_id"],
            "payment_status": "paid",
            "hold_id": held["hold_id"],
            "amount_total": 1,
            "currency": "brl",
        },
    )
    code, summary = await _cli(stack, "ops", "reprocess", "--source", "stripe", "--limit", "50")
    assert code == 0 and summary == {"source": "stripe", "reprocessed": 1}

    async def processed() -> str | None:
        return await stack.pool.fetchval(
            "SELECT outcome FROM processed_events"
            " WHERE external_id = $1 AND processed_at IS NOT NULL",
            event_id,
        )

    assert await eventually(processed) == "mismatch"
    assert any(name.endswith(f"stripe-g1-{event_id}") for name in stack.emulator.tasks)
    code, again = await _cli(stack, "ops", "reprocess", "--source", "stripe")
    assert again["reprocessed"] == 0
    code, found = await _cli(stack, "ops", "payments-without-reservation")
    assert code == 1 and found == {"check": "payments-without-reservation", "found": 1}
    await stack.pool.execute("UPDATE holds SET expires_at = now() - interval '1 hour'")
    code, expired = await _cli(stack, "ops", "expire-stuck", "--limit", "10")
    assert code == 0 and expired["expired"] == 1 and expired["hold_ids"] == [held["hold_id"]]


async def test_dev_whatsapp_transcript_and_pay_by_link(stack: Stack) -> None:
    """A guest talks with `dev whatsapp`, reads the replies with `dev transcript`, pays with
    `dev pay <cs_… from the link>`, and the confirmation appears in the transcript."""
    async with stack.pool.acquire() as conn:
        cal = await make_calendar(conn, [("std", 2, 1, 30000)], days=5)
    phone = "+5511988887777"
    checkout = cal.start + dt.timedelta(days=2)
    guest = ["dev", "whatsapp", "--from", phone, "--property", "test-inn"]
    code, posted = await _cli(
        stack,
        *guest,
        f"Oi, tem quarto de {cal.start:%d/%m/%Y} a {checkout:%d/%m/%Y} para 2 pessoas?",
    )
    assert code == 0 and posted["webhook_status"] == 200

    async def replies(count: int) -> list[str]:
        async def sent() -> list[str]:
            texts = [m["text"] for m in stack.graph.sent if m["to"] == "5511988887777"]
            return texts if len(texts) >= count else []

        return await eventually(sent)

    await replies(1)
    assert (await _cli(stack, *guest, "quero o 1"))[0] == 0
    link = (await replies(2))[1]
    session_id = re.search(r"cs_\w+", link)
    assert session_id is not None
    code, paid = await _cli(stack, "dev", "pay", session_id.group(0))
    assert code == 0 and paid["webhook_status"] == 200
    await replies(3)

    code, out = await _cli_output(stack, "dev", "transcript", "--from", phone)
    lines = out.strip().splitlines()
    assert code == 0 and orjson.loads(lines[-1]) == {"messages": 5, "inbound": 2, "outbound": 3}
    assert [line.split(" ", 2)[1] for line in lines[:-1]] == ["in", "out", "in", "out", "out"]
    assert lines[2].endswith(" in quero o 1")
    assert await stack.pool.fetchval("SELECT code FROM reservations") in lines[-2]
    for line in lines[:-1]:
        assert dt.datetime.fromisoformat(line.split(" ", 1)[0]).tzinfo is not None


async def test_reprocess_answers_a_whatsapp_message_whose_task_was_lost(stack: Stack) -> None:
    """The receipt keeps the message sealed, so `ops reprocess --source whatsapp` can answer
    it after its task was lost, once."""
    async with stack.pool.acquire() as conn:
        await make_calendar(conn, [("std", 2, 1, 30000)], days=5)
    await stack.emulator.stop()  # the task is never created: Meta would retry, we pretend not
    envelope = inbound_envelope("pn-test-inn", "5511966665555", "oi", message_id="wamid.LOST")
    assert (await stack.post_whatsapp(envelope)).status_code == 503
    await stack.emulator.start()
    await stack.pool.execute("UPDATE processed_events SET received_at = now() - interval '1 hour'")
    code, summary = await _cli(stack, "ops", "reprocess", "--source", "whatsapp")
    assert code == 0 and summary == {"source": "whatsapp", "reprocessed": 1}

    async def answered() -> bool:
        return any(m["to"] == "5511966665555" for m in stack.graph.sent)

    await eventually(answered)
    code, again = await _cli(stack, "ops", "reprocess", "--source", "whatsapp")
    assert again["reprocessed"] == 0 and len(stack.graph.sent) == 1


async def test_dev_whatsapp_posts_as_an_evolution_gateway(
    stack: Stack, gateway: FakeEvolution
) -> None:
    """`dev whatsapp --provider evolution` posts the instance's event with its secret; the
    reply goes back through the gateway, and `dev transcript` shows both."""
    phone = "+5511944443333"
    args = ["dev", "whatsapp", "--provider", "evolution", "--property", "evo-inn"]
    code, posted = await _cli(stack, *args, "--from", phone, "oi")
    assert code == 0 and posted["webhook_status"] == 200

    async def replied() -> bool:
        return any(m["to"] == "5511944443333" for m in gateway.sent)

    await eventually(replied)
    code, out = await _cli_output(stack, "dev", "transcript", "--from", phone)
    assert code == 0 and orjson.loads(out.strip().splitlines()[-1])["outbound"] == 1
    code, refused = await _cli(
        stack, "dev", "whatsapp", "--property", "evo-inn", "--from", phone, "x"
    )
    assert code == 1 and refused["error"] == "bad_request"  # that inn is not on Meta


async def test_dev_hold_prices_the_party_and_names_the_rule_it_breaks(stack: Stack) -> None:
    """`--adults` and `--children-ages` price the unit for its party (`--guests N` is N
    adults); a stay a rule refuses exits 1 with {"error": "<rule>", "date", "nights"}."""
    room = RoomTypeSpec("fam", "Família", 4, 2, 30000, base_occupancy=2, extra_adult_cents=10000)
    spec = PropertySpec(
        code="rules-inn",
        name="Pousada",
        timezone="America/Sao_Paulo",
        currency="BRL",
        whatsapp={"phone_number_id": "pn-rules-inn"},
        room_types=(room,),
        overrides=(),
        start=START,
        end=START + dt.timedelta(days=10),
        children=(ChildRate(5, 0), ChildRate(11, 50)),
        seasons=(
            SeasonSpec(
                START + dt.timedelta(days=4),
                START + dt.timedelta(days=6),
                None,
                {"fam": {"min_stay": 3}},
            ),
        ),
    )
    async with stack.pool.acquire() as conn:
        await import_property(conn, spec)

    def hold(first: int, last: int, *party: str) -> list[str]:
        return [
            "dev", "hold", "--property", "rules-inn", "--room-type", "fam",
            "--checkin", (START + dt.timedelta(days=first)).isoformat(),
            "--checkout", (START + dt.timedelta(days=last)).isoformat(), *party,
        ]  # fmt: skip

    code, held = await _cli(stack, *hold(0, 2, "--adults", "2", "--children-ages", "5,8"))
    assert code == 0 and held["amount_total"] == 2 * (30000 + 5000), held
    code, held = await _cli(stack, *hold(2, 3, "--guests", "3"))
    assert code == 0 and held["amount_total"] == 30000 + 10000, held
    code, refused = await _cli(stack, *hold(4, 6, "--adults", "2"))
    assert code == 1
    assert {k: refused[k] for k in ("error", "date", "nights")} == {
        "error": "min_stay",
        "date": (START + dt.timedelta(days=4)).isoformat(),
        "nights": "3",
    }
    code, _ = await _cli_output(stack, *hold(0, 1, "--adults", "2", "--children-ages", "5,x"))
    assert code == 2  # argparse's usage error
