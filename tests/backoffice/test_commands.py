"""The back-office commands against a real calendar: policy tiers at their boundaries,
previews that must still hold when applied, blocks that never overbook, walk-ins that
book all or nothing, and every command's audit row."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from app import db
from app.backoffice.blocks import block_units, unblock_units
from app.backoffice.cancel import cancel_reservation
from app.backoffice.lookup import day_at_inn, find_by_name, show_reservation
from app.backoffice.rates import change_rates
from app.backoffice.runner import Scope
from app.backoffice.walk_in import create_walk_in
from app.db import QUERIES
from app.errors import Conflict, NotFound, NothingAvailable, PreviewChanged
from app.inventory.holds import convert_hold, create_hold
from app.inventory.quote import quote
from app.inventory.setup import AriChange
from app.inventory.stay import Party, Stay
from tests.inventory.conftest import START, Calendar, make_calendar
from tests.inventory.test_setup import PII
from tests.support import hold_request

TZ = ZoneInfo("America/Sao_Paulo")
POLICY = [(7, 100), (2, 50), (0, 0)]


def local(day: dt.date, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ)


async def _policy(conn: asyncpg.Connection, cal: Calendar) -> None:
    await conn.execute(
        QUERIES["replace_cancellation_tiers"],
        cal.property.id,
        [d for d, _ in POLICY],
        [p for _, p in POLICY],
    )


async def _book(
    conn: asyncpg.Connection, cal: Calendar, first: int, last: int, room: str = "std"
) -> str:
    """A reservation paid through Stripe: its code."""
    stay = Stay(START + dt.timedelta(days=first), START + dt.timedelta(days=last), 2)
    request = hold_request(
        cal.property.id, stay, [(cal.room_type_ids[room], 1)], f"k-{uuid.uuid4().hex}"
    )
    hold = await create_hold(conn, request, ttl_seconds=3600)
    conversion = await convert_hold(
        conn,
        hold.id,
        provider_object_id=f"cs_test_{uuid.uuid4().hex}",
        amount_cents=hold.total_cents,
        currency=hold.currency,
        payment_intent=f"pi_{uuid.uuid4().hex[:24]}",
    )
    assert conversion.reservation_code is not None
    return conversion.reservation_code


async def _night(conn: asyncpg.Connection, cal: Calendar, day: int, room: str = "std") -> Any:
    return await conn.fetchrow(
        "SELECT inv_total, inv_held, inv_booked, inv_blocked FROM ari_days"
        " WHERE room_type_id = $1 AND date = $2",
        cal.room_type_ids[room],
        START + dt.timedelta(days=day),
    )


async def _audit(conn: asyncpg.Connection, command: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT actor, arguments, result FROM audit_log WHERE command = $1 ORDER BY id", command
    )


@pytest.fixture
async def cal(conn: asyncpg.Connection) -> Calendar:
    cal = await make_calendar(conn, [("std", 2, 3, 30000), ("fam", 4, 1, 50000)], days=40)
    await _policy(conn, cal)
    return cal


@pytest.mark.parametrize(
    ("days_before", "hour", "minute", "percent"),
    [
        (7, 23, 59, 100),  # the last minute of the last day with a full refund
        (6, 0, 1, 50),  # one minute into the next local day
        (2, 23, 59, 50),
        (1, 0, 1, 0),
        (0, 12, 0, 0),
        (30, 9, 0, 100),
    ],
)
async def test_each_policy_tier_at_its_boundary_in_local_time(
    conn: asyncpg.Connection, cal: Calendar, days_before: int, hour: int, minute: int, percent: int
) -> None:
    code = await _book(conn, cal, 10, 12)
    checkin = START + dt.timedelta(days=10)
    now = local(checkin - dt.timedelta(days=days_before), hour, minute)
    preview = await cancel_reservation(conn, Scope(cal.property), code, now=now)
    assert preview["outcome"] == "preview"
    assert preview["days_before"] == days_before
    assert preview["refund_percent"] == percent
    assert preview["refund_cents"] == 60000 * percent // 100
    # A preview changes nothing.
    assert (await _night(conn, cal, 10))["inv_booked"] == 1
    assert await _audit(conn, "reservation.cancel") == []


async def test_cancel_releases_the_nights_refunds_once_and_is_then_a_noop(
    conn: asyncpg.Connection, cal: Calendar
) -> None:
    code = await _book(conn, cal, 10, 12)
    scope = Scope(cal.property)
    now = local(START, 10, 0)
    preview = await cancel_reservation(conn, scope, code, now=now)
    done = await cancel_reservation(
        conn, scope, code, now=now, execute=True, expected=preview["preview_id"]
    )
    assert done["outcome"] == "cancelled"
    assert done["refund_cents"] == 60000 and done["refund_status"] == "pending"
    assert [(n["date"], n["units"]) for n in done["nights"]] == [
        (str(START + dt.timedelta(days=10)), 1),
        (str(START + dt.timedelta(days=11)), 1),
    ]
    assert (await _night(conn, cal, 10))["inv_booked"] == 0
    again = await cancel_reservation(conn, scope, code, now=now, execute=True)
    assert again == {"code": code, "outcome": "already_cancelled"}
    refunds = await conn.fetch("SELECT amount_cents, status, idempotency_key FROM refunds")
    assert [(r["amount_cents"], r["status"]) for r in refunds] == [(60000, "pending")]
    assert refunds[0]["idempotency_key"].startswith("refund-")
    events = await conn.fetch(
        "SELECT event_type FROM outbox_events WHERE event_type IN"
        " ('refund.requested', 'reservation.cancelled') ORDER BY id"
    )
    assert [e["event_type"] for e in events] == ["refund.requested", "reservation.cancelled"]
    rows = await _audit(conn, "reservation.cancel")
    assert [r["result"]["outcome"] for r in rows] == ["cancelled", "already_cancelled"]
    assert rows[0]["actor"] == "cli"


async def test_a_preview_confirmed_after_midnight_crosses_a_tier_and_is_refused(
    conn: asyncpg.Connection, cal: Calendar
) -> None:
    code = await _book(conn, cal, 10, 12)
    scope = Scope(cal.property)
    checkin = START + dt.timedelta(days=10)
    before = local(checkin - dt.timedelta(days=7), 23, 59)
    preview = await cancel_reservation(conn, scope, code, now=before)
    assert preview["refund_percent"] == 100
    with pytest.raises(PreviewChanged) as refused:
        await cancel_reservation(
            conn,
            scope,
            code,
            now=before + dt.timedelta(minutes=2),
            execute=True,
            expected=preview["preview_id"],
        )
    fresh = refused.value.fields["preview"]
    assert isinstance(fresh, dict)
    assert fresh["refund_percent"] == 50 and fresh["preview_id"] != preview["preview_id"]
    assert (await _night(conn, cal, 10))["inv_booked"] == 1  # nothing done
    applied = await cancel_reservation(
        conn,
        scope,
        code,
        now=before + dt.timedelta(minutes=3),
        execute=True,
        expected=str(fresh["preview_id"]),
    )
    assert applied["refund_cents"] == 30000


async def test_staff_override_the_percent_and_the_audit_says_so(
    conn: asyncpg.Connection, cal: Calendar
) -> None:
    code = await _book(conn, cal, 3, 4)
    done = await cancel_reservation(
        conn,
        Scope(cal.property, "staff-hash"),
        code,
        refund_percent=100,
        execute=True,
        now=local(START + dt.timedelta(days=3), 8, 0),
    )
    assert done["percent_from"] == "staff" and done["refund_cents"] == 30000
    [row] = await _audit(conn, "reservation.cancel")
    assert row["actor"] == "staff-hash" and row["arguments"]["refund_percent"] == 100


async def test_another_inns_code_is_not_found_and_audited(
    conn: asyncpg.Connection, cal: Calendar
) -> None:
    code = await _book(conn, cal, 3, 4)
    other = await make_calendar(conn, [("std", 2, 1, 100)], code="other-inn")
    with pytest.raises(NotFound):
        await cancel_reservation(conn, Scope(other.property), code, execute=True)
    with pytest.raises(NotFound):
        await show_reservation(conn, Scope(other.property), PII, code)
    assert (await _night(conn, cal, 3))["inv_booked"] == 1
    [row] = await _audit(conn, "reservation.cancel")
    assert row["result"] == {"error": "not_found"}


async def test_a_block_that_would_overbook_is_refused_naming_the_nights(
    conn: asyncpg.Connection, cal: Calendar
) -> None:
    await _book(conn, cal, 5, 6)
    await _book(conn, cal, 5, 6)
    scope = Scope(cal.property)
    checkin, checkout = START + dt.timedelta(days=4), START + dt.timedelta(days=7)
    with pytest.raises(Conflict) as refused:
        await block_units(conn, scope, "std", checkin, checkout, 2, execute=True)
    assert str(START + dt.timedelta(days=5)) in str(refused.value)
    assert str(START + dt.timedelta(days=4)) not in str(refused.value)
    assert (await _night(conn, cal, 4))["inv_blocked"] == 0

    done = await block_units(conn, scope, "std", checkin, checkout, 1, execute=True)
    assert done["outcome"] == "blocked"
    assert [(await _night(conn, cal, d))["inv_blocked"] for d in (4, 5, 6, 7)] == [1, 1, 1, 0]
    stay = Stay(START + dt.timedelta(days=5), START + dt.timedelta(days=6), 2)
    assert [o.code for o in await quote(conn, cal.property, stay, today=START)] == ["fam"]

    # Unblocking part of it gives back just those nights.
    part = await unblock_units(
        conn, scope, "std", START + dt.timedelta(days=5), checkout, 1, execute=True
    )
    assert part["outcome"] == "unblocked"
    assert [(await _night(conn, cal, d))["inv_blocked"] for d in (4, 5, 6)] == [1, 0, 0]
    with pytest.raises(Conflict):
        await unblock_units(conn, scope, "std", checkin, checkout, 1, execute=True)
    await unblock_units(
        conn, scope, "std", checkin, checkin + dt.timedelta(days=1), 1, execute=True
    )
    statuses = await conn.fetch("SELECT status FROM blocks WHERE source = 'manual'")
    assert [r["status"] for r in statuses] == ["released"]
    outcomes = [r["result"].get("outcome") for r in await _audit(conn, "block.add")]
    assert outcomes == [None, "blocked"]


async def test_a_walk_in_books_like_a_paid_reservation_and_is_found_by_name(
    conn: asyncpg.Connection, cal: Calendar, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    scope = Scope(cal.property)
    checkin, checkout = START + dt.timedelta(days=2), START + dt.timedelta(days=4)
    party = Party(2, (5,))
    preview = await create_walk_in(
        conn, scope, PII, "fam", checkin, checkout, party, "João da Silva"
    )
    assert preview["total_cents"] == 100000 and "João" not in str(preview)
    done = await create_walk_in(
        conn,
        scope,
        PII,
        "fam",
        checkin,
        checkout,
        party,
        "João da Silva",
        execute=True,
        expected=preview["preview_id"],
    )
    assert done["outcome"] == "created"
    row = await conn.fetchrow(
        "SELECT r.status, p.provider, p.provider_object_id, p.status AS paid"
        " FROM reservations r JOIN payments p ON p.id = r.payment_id WHERE r.code = $1",
        done["code"],
    )
    assert tuple(row) == ("confirmed", "offline", None, "succeeded")
    assert (await _night(conn, cal, 2, "fam"))["inv_booked"] == 1
    assert await find_by_name(conn, scope, PII, "joao SILVA") == [done["code"]]
    assert await find_by_name(conn, scope, PII, "Maria") == []
    shown = await show_reservation(conn, scope, PII, done["code"])
    assert shown["guest_name"] == "João da Silva" and shown["units"][0]["children_ages"] == [5]
    day = await day_at_inn(conn, scope, PII, checkin)
    assert [a["code"] for a in day["arrivals"]] == [done["code"]]
    # Applied again: the same booking, once.
    again = await create_walk_in(
        conn, scope, PII, "fam", checkin, checkout, party, "joão da silva", execute=True
    )
    assert again == {"code": done["code"], "outcome": "already_created"}
    audit = await conn.fetch("SELECT arguments::text, result::text FROM audit_log")
    assert not any("João" in r[0] + r[1] or "Silva" in r[0] + r[1] for r in audit)
    tasks = await conn.fetch("SELECT payload::text FROM outbox_events")
    logged = [str(r.__dict__) for r in caplog.records]
    assert not any("Silva" in text for text in [*logged, *(r[0] for r in tasks)])
    # Cancelled two days ahead (50%), a walk-in's money is given back at the desk.
    cancelled = await cancel_reservation(
        conn, scope, done["code"], execute=True, now=local(START, 9, 0)
    )
    assert cancelled["refund_via"] == "offline" and cancelled["refund_status"] == "offline"
    paid = await conn.fetchval(
        "SELECT refunded_cents FROM payments WHERE provider = 'offline' AND refunded_cents > 0"
    )
    assert paid == 50000


async def test_fifty_walk_ins_race_for_the_last_unit_and_one_books(
    db_url: str, conn: asyncpg.Connection, cal: Calendar
) -> None:
    checkin, checkout = START + dt.timedelta(days=20), START + dt.timedelta(days=23)
    pool = await db.create_pool(db_url, 20)
    try:

        async def attempt(i: int) -> str:
            async with pool.acquire() as c:
                try:
                    await create_walk_in(
                        c,
                        Scope(cal.property),
                        PII,
                        "fam",
                        checkin,
                        checkout,
                        Party(2),
                        f"Guest {i}",
                        execute=True,
                    )
                except NothingAvailable:
                    return "refused"
            return "booked"

        outcomes = await asyncio.gather(*(attempt(i) for i in range(50)))
    finally:
        await pool.close()
    assert outcomes.count("booked") == 1
    nights = [await _night(conn, cal, d, "fam") for d in (20, 21, 22)]
    assert [n["inv_booked"] for n in nights] == [1, 1, 1]
    assert [n["inv_held"] for n in nights] == [0, 0, 0]
    assert await conn.fetchval("SELECT count(*) FROM reservations") == 1
    assert await conn.fetchval("SELECT count(*) FROM payments WHERE provider = 'offline'") == 1


async def test_a_price_change_is_manual_and_audited(
    conn: asyncpg.Connection, cal: Calendar
) -> None:
    scope = Scope(cal.property)
    checkin, checkout = START + dt.timedelta(days=1), START + dt.timedelta(days=3)
    done = await change_rates(
        conn,
        scope,
        "std",
        checkin,
        checkout,
        AriChange(rate_cents=45000, min_stay=2),
        execute=True,
    )
    assert done["nights_changed"] == 2
    rows = await conn.fetch(
        "SELECT date, rate_cents, min_stay, manual FROM ari_days WHERE room_type_id = $1"
        " AND date BETWEEN $2 AND $3 ORDER BY date",
        cal.room_type_ids["std"],
        checkin,
        checkout,
    )
    assert [(r["rate_cents"], r["min_stay"]) for r in rows] == [
        (45000, 2),
        (45000, 2),
        (30000, None),
    ]
    assert set(rows[0]["manual"]) == {"rate_cents", "min_stay"}
    [row] = await _audit(conn, "ari.change")
    assert row["arguments"]["rate_cents"] == 45000


async def _race(
    pool: asyncpg.Pool, cal: Calendar, calendar_id: int, code: str, late: Any, stay: Stay
) -> None:
    """Staff cancel ``code`` while the guest of the expired hold ``late`` pays for the same
    night and the channel's feed brings a booking of it."""

    async def cancel() -> None:
        async with pool.acquire() as c:
            await cancel_reservation(c, Scope(cal.property), code, execute=True)

    async def pay_late() -> None:
        async with pool.acquire() as c:
            await convert_hold(
                c,
                late.id,
                provider_object_id=f"cs_late_{late.id}",
                amount_cents=late.total_cents,
                currency=late.currency,
            )

    async def channel() -> None:
        async with pool.acquire() as c:
            await c.fetchrow(
                "SELECT * FROM apply_calendar_feed($1, $2, $3, $4, $5, NULL)",
                calendar_id,
                [f"uid-{code}"],
                [stay.checkin],
                [stay.checkout],
                [False],
            )

    await asyncio.gather(cancel(), pay_late(), channel())


async def test_cancel_racing_a_late_payment_and_a_channel_import_keeps_counters_exact(
    db_url: str, conn: asyncpg.Connection, cal: Calendar
) -> None:
    fam = cal.room_type_ids["fam"]
    calendar_id = await conn.fetchval(
        "INSERT INTO calendars (property_id, room_type_id, name, export_digest)"
        " VALUES ($1, $2, 'airbnb', 'digest-airbnb') RETURNING id",
        cal.property.id,
        fam,
    )
    pool = await db.create_pool(db_url, 6)
    try:
        for round_ in range(4):
            first = 25 + 2 * round_
            stay = Stay(START + dt.timedelta(days=first), START + dt.timedelta(days=first + 1), 2)
            late = await create_hold(
                conn,
                hold_request(cal.property.id, stay, [(fam, 1)], f"late-{round_}"),
                ttl_seconds=3600,
            )
            await conn.execute(QUERIES["release_hold"], late.id, "cancelled", "test", None)
            code = await _book(conn, cal, first, first + 1, "fam")
            await _race(pool, cal, calendar_id, code, late, stay)
            night = await _night(conn, cal, first, "fam")
            confirmed = await conn.fetchval(
                "SELECT count(*) FROM reservations r JOIN hold_nights n ON n.hold_id = r.hold_id"
                " WHERE r.status = 'confirmed' AND n.room_type_id = $1 AND n.date = $2",
                fam,
                stay.checkin,
            )
            blocked = await conn.fetchval(
                "SELECT coalesce(sum(qty), 0) FROM block_nights WHERE room_type_id = $1"
                " AND date = $2",
                fam,
                stay.checkin,
            )
            # The night went to one of them at most, and the counters say exactly that.
            assert night["inv_booked"] == confirmed and night["inv_blocked"] == blocked
            assert night["inv_booked"] + night["inv_blocked"] <= 1
    finally:
        await pool.close()
