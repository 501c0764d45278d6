"""The back office through its command line, against the running stack: a guest's
reservation cancelled with its refund made once in Stripe and the guest and staff told
once; walk-ins, blocks and a day's list; every command audited, another inn's code not
found, and no guest name or number in any log, audit row or task."""

from __future__ import annotations

import datetime as dt

import pytest

from app.dev.fake_stripe import event
from app.inventory.property_file import CancellationTier, PropertySpec, RoomTypeSpec
from app.inventory.setup import import_property
from app.pii import pii_keys
from tests.e2e.conftest import Stack, rows_as_text
from tests.e2e.test_commands import _cli
from tests.e2e.test_whatsapp_flow import GUEST, _settled, replies, say
from tests.e2e.test_whatsapp_staff import STAFF, STAFF_IDS, TEMPLATES
from tests.support import eventually

NAME = "Joaquina Canária Pereira"


async def _inn(stack: Stack, start: dt.date, code: str = "test-inn") -> None:
    spec = PropertySpec(
        code=code,
        name="Pousada Teste",
        timezone="America/Sao_Paulo",
        currency="BRL",
        whatsapp={"phone_number_id": f"pn-{code}", "templates": TEMPLATES},
        room_types=(RoomTypeSpec("std", "Std", 2, 2, 30000),),
        overrides=(),
        start=start,
        end=start + dt.timedelta(days=30),
        staff_numbers=STAFF if code == "test-inn" else (),
        cancellation=(CancellationTier(7, 100), CancellationTier(2, 50), CancellationTier(0, 0)),
    )
    async with stack.pool.acquire() as conn:
        await import_property(conn, spec, pii=pii_keys(stack.settings))


async def _audit(stack: Stack) -> list[tuple[str, str]]:
    rows = await stack.pool.fetch("SELECT command, result FROM audit_log ORDER BY id")
    return [(r["command"], r["result"].get("outcome") or r["result"].get("error")) for r in rows]


async def test_a_guests_booking_cancelled_by_the_staff_refunds_once_and_tells_everyone_once(
    stack: Stack, all_logs: pytest.LogCaptureFixture
) -> None:
    start = dt.date.today() + dt.timedelta(days=10)
    await _inn(stack, start)
    await _inn(stack, start, "other-inn")
    stack.emulator.extra_deliveries = 2  # every task runs three times
    await say(stack, f"de {start:%d/%m/%Y} a {start + dt.timedelta(days=2):%d/%m/%Y}, 2 pessoas")
    await replies(stack, 1)
    await say(stack, "sim")
    link = (await replies(stack, 2))[1]
    session = stack.stripe.complete(link.split("/pay/")[1].split()[0])
    assert (await stack.post_event(event("checkout.session.completed", session))).status_code == 200
    confirmed = (await replies(stack, 3))[2]
    code = confirmed.split("Código: ")[1][:6]
    assert "Cancelamento: reembolso de 100% até 7 dias antes da chegada" in confirmed

    status, shown = await _cli(stack, "reservation", "show", code, "--property", "test-inn")
    assert status == 0 and shown["status"] == "confirmed" and shown["total_cents"] == 60000
    status, refused = await _cli(stack, "reservation", "show", code, "--property", "other-inn")
    assert status == 1 and refused["error"] == "not_found"

    status, preview = await _cli(stack, "reservation", "cancel", code, "--property", "test-inn")
    assert status == 0 and preview["outcome"] == "preview"
    assert preview["refund_percent"] == 100 and preview["refund_cents"] == 60000
    assert await stack.pool.fetchval("SELECT status FROM reservations") == "confirmed"
    status, done = await _cli(
        stack,
        "reservation",
        "cancel",
        code,
        "--property",
        "test-inn",
        "--apply",
        "--preview",
        preview["preview_id"],
    )
    assert status == 0 and done["outcome"] == "cancelled"
    status, again = await _cli(
        stack, "reservation", "cancel", code, "--property", "test-inn", "--apply"
    )
    assert status == 0 and again["outcome"] == "already_cancelled"

    told = (await replies(stack, 4))[3]
    assert f"Sua reserva {code}" in told and "R$ 600,00" in told

    async def refunded() -> bool:
        row = await stack.pool.fetchrow("SELECT status, stripe_refund_id FROM refunds")
        return row is not None and row["status"] == "succeeded"

    await eventually(refunded, within=20)
    await _settled(stack)
    assert len(stack.stripe.refunds) == 1 and stack.stripe.refunds[0]["amount"] == 60000
    assert len(await replies(stack, 4)) == 4  # the guest told once
    for staff in STAFF_IDS:
        notices = [n for n in await replies(stack, 2, staff) if "cancelada" in n]
        assert len(notices) == 1 and code in notices[0]
    nights = await stack.pool.fetchval("SELECT sum(inv_booked) FROM ari_days")
    assert nights == 0
    assert await _audit(stack) == [
        ("reservation.show", "shown"),
        ("reservation.show", "not_found"),
        ("reservation.cancel", "cancelled"),
        ("reservation.cancel", "already_cancelled"),
    ]
    assert GUEST not in "".join(r.getMessage() + str(r.__dict__) for r in all_logs.records)


async def test_walk_ins_blocks_and_the_days_list_through_the_command_line(
    stack: Stack, all_logs: pytest.LogCaptureFixture
) -> None:
    start = dt.date.today() + dt.timedelta(days=10)
    await _inn(stack, start)
    checkin, checkout = start.isoformat(), (start + dt.timedelta(days=2)).isoformat()
    walk_in = [
        "reservation",
        "create",
        "--property",
        "test-inn",
        "--room-type",
        "std",
        "--checkin",
        checkin,
        "--checkout",
        checkout,
        "--adults",
        "2",
        "--name",
        NAME,
    ]
    status, preview = await _cli(stack, *walk_in)
    assert status == 0 and preview["total_cents"] == 60000
    status, booked = await _cli(stack, *walk_in, "--apply")
    assert status == 0 and booked["outcome"] == "created"
    status, found = await _cli(
        stack, "reservation", "search", "--property", "test-inn", "--name", "joaquina"
    )
    assert found == {"codes": [booked["code"]]}

    block = [
        "block",
        "add",
        "--property",
        "test-inn",
        "--room-type",
        "std",
        "--from",
        checkin,
        "--to",
        checkout,
        "--units",
        "2",
    ]
    status, refused = await _cli(stack, *block, "--apply")
    assert status == 1 and refused["error"] == "conflict" and checkin in refused["message"]
    status, blocked = await _cli(stack, *block[:-1], "1", "--apply")
    assert status == 0 and blocked["outcome"] == "blocked"
    status, _ = await _cli(stack, *walk_in[:-1], "Outro Hóspede", "--apply")
    assert status == 1  # both units taken: nothing left to sell
    status, freed = await _cli(stack, "block", "remove", *block[2:-1], "1", "--apply")
    assert status == 0 and freed["outcome"] == "unblocked"

    status, day = await _cli(stack, "reservations", "--property", "test-inn", "--date", checkin)
    assert status == 0 and [a["code"] for a in day["arrivals"]] == [booked["code"]]
    assert day["arrivals"][0]["guest_name"] == NAME
    status, day_after = await _cli(
        stack, "reservations", "--property", "test-inn", "--date", checkout
    )
    assert [d["code"] for d in day_after["departures"]] == [booked["code"]]
    assert [c for c, _ in await _audit(stack)] == [
        "reservation.create",
        "reservation.search",
        "block.add",
        "block.add",
        "reservation.create",
        "block.remove",
        "reservations.day",
        "reservations.day",
    ]
    await _settled(stack)
    # The name is in no log, no audit or outbox row (what tasks carry), no readable column.
    stored = await rows_as_text(stack)
    for word in NAME.split():
        assert word not in stored
        assert word not in "".join(r.getMessage() + str(r.__dict__) for r in all_logs.records)


async def test_the_payment_link_is_sent_again_and_renewed_only_once_expired(
    stack: Stack,
) -> None:
    start = dt.date.today() + dt.timedelta(days=10)
    await _inn(stack, start)
    await say(stack, f"de {start:%d/%m/%Y} a {start + dt.timedelta(days=2):%d/%m/%Y}, 2 pessoas")
    await replies(stack, 1)
    await say(stack, "sim")
    first = (await replies(stack, 2))[1].split("/pay/")[1].split()[0]
    before = await stack.pool.fetchval("SELECT expires_at FROM holds")

    status, held = await _cli(stack, "holds", "--property", "test-inn")
    assert status == 0 and [h["total_cents"] for h in held["holds"]] == [60000]
    status, preview = await _cli(stack, "link", "--property", "test-inn", "--phone", f"+{GUEST}")
    assert status == 0 and preview["outcome"] == "preview" and preview["session"] == "same"
    status, sent = await _cli(
        stack, "link", "--property", "test-inn", "--phone", f"+{GUEST}", "--apply"
    )
    assert status == 0 and sent["outcome"] == "sent" and first in sent["url"]
    assert first in (await replies(stack, 3))[2]
    assert await stack.pool.fetchval("SELECT expires_at FROM holds") == before

    stack.stripe.sessions[first]["status"] = "expired"  # its event not delivered yet
    hold_ref = str(await stack.pool.fetchval("SELECT id FROM holds"))[:8]
    status, renewed = await _cli(
        stack, "link", "--property", "test-inn", "--hold", hold_ref, "--apply"
    )
    assert status == 0 and renewed["session"] == "new" and first not in renewed["url"]
    assert renewed["url"].split("/pay/")[1] in (await replies(stack, 4))[3]
    assert await stack.pool.fetchval("SELECT expires_at FROM holds") >= before
    assert len(stack.stripe.sessions) == 2
    # The old session's expiry, arriving late, leaves the hold to its new link.
    expired = event("checkout.session.expired", stack.stripe.sessions[first])
    assert (await stack.post_event(expired)).status_code == 200
    await _settled(stack)
    outcome = "SELECT outcome FROM processed_events WHERE event_type = 'checkout.session.expired'"
    assert await stack.pool.fetchval(outcome) == "session_superseded"
    assert await stack.pool.fetchval("SELECT status FROM holds") == "active"
    status, refused = await _cli(
        stack, "link", "--property", "test-inn", "--phone", "+5511988887777"
    )
    assert status == 1 and refused["error"] == "not_found"
    assert [c for c, _ in await _audit(stack)] == ["holds.awaiting"] + ["hold.resend_link"] * 3
