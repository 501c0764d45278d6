"""Races on the critical transactions, over many real connections at once.

Each test opens its own asyncpg connections (one query at a time each), starts the racers
together with asyncio.gather and then checks the database: exactly one outcome per race,
no partial hold, and counters equal to what the committed holds and reservations own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import pytest

from app.errors import AppError, NothingAvailable
from app.inventory.holds import (
    Conversion,
    Hold,
    HoldRequest,
    Unit,
    cancel_hold,
    convert_hold,
    create_hold,
    expire_due_holds,
    expire_hold,
)
from app.inventory.property_file import OverrideSpec
from app.inventory.stay import Party, Stay
from tests.inventory.conftest import START, Calendar, make_calendar
from tests.support import connections, hold_request, rooms_of

TTL = 3600
ATTEMPTS = 200
CONNECTIONS = 64
ROUNDS = 20
RIVAL_TRIES = 20

Job = Callable[[asyncpg.Connection], Awaitable[Any]]
Night = tuple[int, dt.date]  # (room_type_id, date)


def _raise_unexpected(results: Sequence[Any]) -> None:
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, AppError):
            raise result


async def race(*racers: Awaitable[Any]) -> list[Any]:
    """Run the racers at once. A domain error is a result; anything else fails the test."""
    results = await asyncio.gather(*racers, return_exceptions=True)
    _raise_unexpected(results)
    return results


async def fan_out(conns: Sequence[asyncpg.Connection], jobs: Sequence[Job]) -> list[Any]:
    """Run all ``jobs`` at once, job i on connection i mod len(conns), in job order."""
    results: list[Any] = [None] * len(jobs)

    async def worker(offset: int, conn: asyncpg.Connection) -> None:
        for i in range(offset, len(jobs), len(conns)):
            try:
                results[i] = await jobs[i](conn)
            except AppError as exc:
                results[i] = exc

    _raise_unexpected(
        await asyncio.gather(*(worker(i, c) for i, c in enumerate(conns)), return_exceptions=True)
    )
    return results


def kinds(results: Sequence[Any]) -> Counter[str]:
    """What came back, by kind: for assertion messages."""
    return Counter(type(r).__name__ for r in results)


def stay_at(cal: Calendar, first: int, nights: int = 1, guests: int = 1) -> Stay:
    checkin = cal.start + dt.timedelta(days=first)
    return Stay(checkin, checkin + dt.timedelta(days=nights), guests)


def request(
    cal: Calendar, stay: Stay, rooms: dict[str, int], key: str | None = None
) -> HoldRequest:
    return hold_request(
        property_id=cal.property.id,
        stay=stay,
        rooms=tuple((cal.room_type_ids[code], qty) for code, qty in rooms.items()),
        idempotency_key=key or uuid.uuid4().hex,
    )


def hold_job(req: HoldRequest) -> Job:
    async def job(conn: asyncpg.Connection) -> Hold:
        return await create_hold(conn, req, ttl_seconds=TTL)

    return job


async def new_hold(conn: asyncpg.Connection, cal: Calendar, first: int) -> Hold:
    return await create_hold(conn, request(cal, stay_at(cal, first), {"std": 1}), ttl_seconds=TTL)


async def backdate(conn: asyncpg.Connection, *hold_ids: uuid.UUID) -> None:
    """Make holds due for expiry now, without waiting for their TTL."""
    await conn.execute(
        "UPDATE holds SET expires_at = now() - interval '1 minute' WHERE id = ANY($1::uuid[])",
        list(hold_ids),
    )


async def pay(conn: asyncpg.Connection, hold: Hold, object_id: str | None = None) -> Conversion:
    return await convert_hold(
        conn,
        hold.id,
        provider_object_id=object_id or f"cs_{uuid.uuid4().hex}",
        amount_cents=hold.total_cents,
        currency="brl",
    )


async def counters(conn: asyncpg.Connection, cal: Calendar, first: int) -> tuple[int, int]:
    """(inv_held, inv_booked) of the 'std' night ``first`` days after the calendar start."""
    row = await conn.fetchrow(
        "SELECT inv_held, inv_booked FROM ari_days WHERE room_type_id = $1 AND date = $2",
        cal.room_type_ids["std"],
        cal.start + dt.timedelta(days=first),
    )
    assert row is not None
    return row["inv_held"], row["inv_booked"]


async def events(conn: asyncpg.Connection, aggregate_id: object) -> list[str]:
    rows = await conn.fetch(
        "SELECT event_type FROM outbox_events WHERE aggregate_id = $1 ORDER BY id",
        str(aggregate_id),
    )
    return [r["event_type"] for r in rows]


async def hold_status(conn: asyncpg.Connection, hold_id: uuid.UUID) -> str:
    return str(await conn.fetchval("SELECT status FROM holds WHERE id = $1", hold_id))


async def payment_status(conn: asyncpg.Connection, payment_id: uuid.UUID) -> str:
    return str(await conn.fetchval("SELECT status FROM payments WHERE id = $1", payment_id))


async def reservations_of(conn: asyncpg.Connection, hold_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, payment_id, code FROM reservations WHERE hold_id = $1", hold_id
    )


@pytest.fixture
async def racers(db_url: str) -> AsyncIterator[list[asyncpg.Connection]]:
    """Three connections of their own, one per racer."""
    async with connections(db_url, 3) as conns:
        yield conns


# --- Many guests, one calendar -------------------------------------------------------------


@pytest.mark.parametrize("capacity", [1, 10])
async def test_one_night_is_sold_exactly_capacity_times(
    conn: asyncpg.Connection, db_url: str, capacity: int
) -> None:
    """200 concurrent holds for one night with K rooms, over 64 connections: exactly K
    succeed, the other 200 - K get NothingAvailable, and the losers leave nothing behind
    (no hold, no night, no outbox row); inv_held is K."""
    cal = await make_calendar(conn, [("std", 2, capacity, 30000)], days=1)
    stay = stay_at(cal, 0)
    requests = [request(cal, stay, {"std": 1}) for _ in range(ATTEMPTS)]

    async with connections(db_url, CONNECTIONS) as conns:
        results = await fan_out(conns, [hold_job(r) for r in requests])

    won = [r for r in results if isinstance(r, Hold)]
    lost = [r for r in results if isinstance(r, NothingAvailable)]
    assert len(won) == capacity, kinds(results)
    assert len(lost) == ATTEMPTS - capacity, kinds(results)
    assert not any(h.replayed for h in won)
    row = await conn.fetchrow(
        "SELECT inv_total, inv_held, inv_booked FROM ari_days WHERE room_type_id = $1",
        cal.room_type_ids["std"],
    )
    assert tuple(row) == (capacity, capacity, 0)
    assert {r["id"] for r in await conn.fetch("SELECT id FROM holds")} == {h.id for h in won}
    assert await conn.fetchval("SELECT count(*) FROM hold_nights") == capacity
    assert (
        await conn.fetchval("SELECT count(*) FROM outbox_events WHERE event_type = 'hold.created'")
        == capacity
    )


async def test_two_unit_holds_with_two_parties_are_all_or_nothing(
    conn: asyncpg.Connection, db_url: str
) -> None:
    """40 holds of a standard room and a family room (two parties: 2 adults; 2 adults and a
    child of 8) race 40 holds of one standard room for a night with 2 standard rooms and 1
    family room: the standard rooms sell exactly twice, the family room at most once and
    only with a standard room, and each winner owns every line and night it asked for,
    priced for its own party."""
    cal = await make_calendar(conn, [("std", 2, 2, 30000), ("fam", 4, 1, 50000)], days=1)
    std, fam = cal.room_type_ids["std"], cal.room_type_ids["fam"]
    stay = stay_at(cal, 0, 1, guests=5)
    pair = (Unit(std, Party(2)), Unit(fam, Party(2, (8,))))
    requests = [HoldRequest(cal.property.id, stay, pair, f"pair-{i}") for i in range(40)]
    alone = stay_at(cal, 0, 1, guests=2)
    requests += [
        HoldRequest(cal.property.id, alone, (Unit(std, Party(2)),), f"one-{i}") for i in range(40)
    ]
    random.Random(7).shuffle(requests)

    async with connections(db_url, CONNECTIONS) as conns:
        results = await fan_out(conns, [hold_job(r) for r in requests])

    assert all(isinstance(r, Hold | NothingAvailable) for r in results), kinds(results)
    winners = {r.id: req for r, req in zip(results, requests, strict=True) if isinstance(r, Hold)}
    pairs = [req for req in winners.values() if len(req.units) == 2]
    held = dict(
        await conn.fetch("SELECT room_type_id, inv_held FROM ari_days WHERE date = $1", cal.start)
    )
    assert held == {std: 2, fam: len(pairs)} and len(pairs) <= 1
    for hold_id, req in winners.items():
        lines = await conn.fetch(
            "SELECT room_type_id, adults, children_ages, total_cents FROM hold_units"
            " WHERE hold_id = $1 ORDER BY unit",
            hold_id,
        )
        assert [(r["room_type_id"], r["adults"], tuple(r["children_ages"])) for r in lines] == [
            (u.room_type_id, u.party.adults, u.party.children_ages) for u in req.units
        ]
        assert [r["total_cents"] for r in lines] == [
            30000 if u.room_type_id == std else 50000 for u in req.units
        ]
        nights = await conn.fetch(
            "SELECT room_type_id, qty FROM hold_nights WHERE hold_id = $1", hold_id
        )
        assert sorted(map(tuple, nights)) == sorted(rooms_of(req))
    assert await conn.fetchval("SELECT count(*) FROM hold_units") == sum(
        len(req.units) for req in winners.values()
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_overlapping_multi_night_claims_are_all_or_nothing(
    conn: asyncpg.Connection, db_url: str, seed: int
) -> None:
    """300 concurrent holds over random overlapping stays of 1-5 nights, some for two room
    types at once, on nights with 1-3 rooms: no deadlock or lock timeout (only holds and
    NothingAvailable), every committed hold owns exactly nights x room types rows, per-night
    inv_held is the sum over committed holds and within inv_total, and every refused request
    really cannot fit in what the winners hold (claims only grow here)."""
    rng = random.Random(seed)
    days = 10
    codes = ("std", "fam")
    start = START
    totals = {
        (code, start + dt.timedelta(days=d)): rng.randint(1, 3)
        for code in codes
        for d in range(days)
    }
    overrides = tuple(
        OverrideSpec(code, day, day, total, None, None) for (code, day), total in totals.items()
    )
    cal = await make_calendar(
        conn,
        [("std", 2, 3, 30000), ("fam", 4, 3, 50000)],
        start=start,
        days=days,
        overrides=overrides,
    )
    requests = []
    for _ in range(300):
        first = rng.randrange(days)
        nights = rng.randint(1, min(5, days - first))
        if rng.random() < 0.3:
            rooms = {"std": 1, "fam": 1}
        else:
            rooms = {rng.choice(codes): rng.choice((1, 1, 2))}
        requests.append(request(cal, stay_at(cal, first, nights, sum(rooms.values())), rooms))

    def nights_of(req: HoldRequest) -> dict[Night, int]:
        return {(rt, day): qty for rt, qty in rooms_of(req) for day in req.stay.dates()}

    async with connections(db_url, CONNECTIONS) as conns:
        results = await fan_out(conns, [hold_job(r) for r in requests])

    assert all(isinstance(r, Hold | NothingAvailable) for r in results), kinds(results)
    winners = {r.id: req for r, req in zip(results, requests, strict=True) if isinstance(r, Hold)}
    losers = [req for r, req in zip(results, requests, strict=True) if not isinstance(r, Hold)]
    assert winners and losers, kinds(results)

    owned: dict[uuid.UUID, dict[Night, int]] = {}
    for row in await conn.fetch("SELECT hold_id, room_type_id, date, qty FROM hold_nights"):
        owned.setdefault(row["hold_id"], {})[(row["room_type_id"], row["date"])] = row["qty"]
    assert owned.keys() == winners.keys()
    for hold_id, req in winners.items():
        assert owned[hold_id] == nights_of(req), f"partial or wrong hold {hold_id}"
    statuses = await conn.fetch("SELECT id, status FROM holds")
    assert {r["id"]: r["status"] for r in statuses} == dict.fromkeys(winners, "active")

    expected_held: Counter[Night] = Counter()
    for req in winners.values():
        expected_held.update(nights_of(req))
    ids = {rt: code for code, rt in cal.room_type_ids.items()}
    rows = await conn.fetch(
        "SELECT room_type_id, date, inv_total, inv_held, inv_booked FROM ari_days WHERE date < $1",
        start + dt.timedelta(days=days),
    )
    assert len(rows) == len(totals)
    for row in rows:
        night = (row["room_type_id"], row["date"])
        assert row["inv_total"] == totals[(ids[night[0]], night[1])]
        assert row["inv_held"] == expected_held[night], night
        assert row["inv_booked"] == 0
        assert row["inv_held"] <= row["inv_total"], night
    for req in losers:
        assert any(
            expected_held[night] + qty > totals[(ids[night[0]], night[1])]
            for night, qty in nights_of(req).items()
        ), f"refused although every night still fits: {req}"


# --- Races with exactly one outcome --------------------------------------------------------


@pytest.mark.parametrize("closer", ["expire", "cancel"])
async def test_convert_racing_expire_or_cancel_books_exactly_once(
    conn: asyncpg.Connection, racers: list[asyncpg.Connection], closer: str
) -> None:
    """Payment vs expiry (or cancel) of the same due hold, 20 times: the hold always ends
    converted with one reservation and the night booked once. Either the conversion came
    first (the close is a no-op, no close event) or the close did (one close event, and the
    conversion is a late one that re-claimed the still-free night)."""
    cal = await make_calendar(conn, [("std", 2, 1, 30000)], days=ROUNDS)
    for i in range(ROUNDS):
        hold = await new_hold(conn, cal, i)
        await backdate(conn, hold.id)
        convert = pay(racers[0], hold)
        if closer == "expire":
            close = expire_hold(racers[1], hold.id)
        else:
            close = cancel_hold(racers[1], hold.id, "guest changed plans")
        if i % 2:
            closed, conversion = await race(close, convert)
        else:
            conversion, closed = await race(convert, close)

        assert isinstance(conversion, Conversion) and conversion.outcome == "converted"
        assert isinstance(closed, bool)
        close_event = "hold.expired" if closer == "expire" else "hold.cancelled"
        assert await events(conn, hold.id) == ["hold.created"] + ([close_event] if closed else [])
        late = await conn.fetchval(
            "SELECT (payload->>'late')::boolean FROM outbox_events"
            " WHERE event_type = 'reservation.confirmed' AND aggregate_id = $1",
            str(conversion.reservation_id),
        )
        assert late is closed
        assert await hold_status(conn, hold.id) == "converted"
        assert [r["id"] for r in await reservations_of(conn, hold.id)] == [
            conversion.reservation_id
        ]
        assert await payment_status(conn, conversion.payment_id) == "succeeded"
        assert await counters(conn, cal, i) == (0, 1)


async def test_freed_last_room_goes_to_exactly_one_guest(
    conn: asyncpg.Connection, racers: list[asyncpg.Connection]
) -> None:
    """On the last room, a due hold's payment, its expiry and another guest (retrying at
    once while refused) race, 20 times: exactly one party owns the night. Either the payment
    converts (the rival never gets the room) or expiry then the rival win (the payment is
    'late', needs a refund and makes no reservation)."""
    cal = await make_calendar(conn, [("std", 2, 1, 30000)], days=ROUNDS)
    for i in range(ROUNDS):
        hold = await new_hold(conn, cal, i)
        await backdate(conn, hold.id)
        rival = request(cal, stay_at(cal, i), {"std": 1})

        async def rival_retries(
            rival_conn: asyncpg.Connection, req: HoldRequest = rival
        ) -> Hold | NothingAvailable:
            refused = NothingAvailable()
            for _ in range(RIVAL_TRIES):
                try:
                    return await create_hold(rival_conn, req, ttl_seconds=TTL)
                except NothingAvailable as exc:
                    refused = exc
            return refused

        expired, rivalled, conversion = await race(
            expire_hold(racers[0], hold.id), rival_retries(racers[1]), pay(racers[2], hold)
        )

        assert isinstance(conversion, Conversion)
        if conversion.outcome == "converted":
            assert isinstance(rivalled, NothingAvailable)
            assert await counters(conn, cal, i) == (0, 1)
            assert await hold_status(conn, hold.id) == "converted"
            assert await payment_status(conn, conversion.payment_id) == "succeeded"
            assert len(await reservations_of(conn, hold.id)) == 1
        else:
            assert conversion.outcome == "late"
            assert expired is True
            assert isinstance(rivalled, Hold)
            assert await counters(conn, cal, i) == (1, 0)
            assert await hold_status(conn, hold.id) == "expired"
            assert await hold_status(conn, rivalled.id) == "active"
            assert await payment_status(conn, conversion.payment_id) == "needs_refund"
            assert await events(conn, conversion.payment_id) == ["payment.late"]
            assert await reservations_of(conn, hold.id) == []


async def test_same_payment_twice_at_once_converts_once(
    conn: asyncpg.Connection, racers: list[asyncpg.Connection]
) -> None:
    """The same payment delivered twice at once, 20 times: one 'converted', one
    'already_processed' answering with the same payment and reservation; one reservation."""
    cal = await make_calendar(conn, [("std", 2, 1, 30000)], days=ROUNDS)
    for i in range(ROUNDS):
        hold = await new_hold(conn, cal, i)
        object_id = f"cs_same_{i}"
        first, second = await race(pay(racers[0], hold, object_id), pay(racers[1], hold, object_id))

        assert sorted([first.outcome, second.outcome]) == ["already_processed", "converted"]
        assert first.payment_id == second.payment_id
        assert first.reservation_id == second.reservation_id is not None
        assert first.reservation_code == second.reservation_code
        assert [r["id"] for r in await reservations_of(conn, hold.id)] == [first.reservation_id]
        assert await payment_status(conn, first.payment_id) == "succeeded"
        assert await conn.fetchval("SELECT count(*) FROM payments WHERE hold_id = $1", hold.id) == 1
        assert await events(conn, first.payment_id) == []
        assert await events(conn, first.reservation_id) == ["reservation.confirmed"]
        assert await counters(conn, cal, i) == (0, 1)


async def test_two_payments_at_once_convert_once_and_refund_the_other(
    conn: asyncpg.Connection, racers: list[asyncpg.Connection]
) -> None:
    """Two different payments for one hold at once, 20 times: one 'converted', the other a
    'duplicate' whose payment needs a refund; the one reservation is the winner's."""
    cal = await make_calendar(conn, [("std", 2, 1, 30000)], days=ROUNDS)
    for i in range(ROUNDS):
        hold = await new_hold(conn, cal, i)
        first, second = await race(pay(racers[0], hold), pay(racers[1], hold))

        by_outcome = {c.outcome: c for c in (first, second)}
        assert sorted(by_outcome) == ["converted", "duplicate"]
        won, dup = by_outcome["converted"], by_outcome["duplicate"]
        assert dup.reservation_id is None and dup.payment_id != won.payment_id
        reservations = await reservations_of(conn, hold.id)
        assert [(r["id"], r["payment_id"]) for r in reservations] == [
            (won.reservation_id, won.payment_id)
        ]
        assert await payment_status(conn, won.payment_id) == "succeeded"
        assert await payment_status(conn, dup.payment_id) == "needs_refund"
        assert await events(conn, dup.payment_id) == ["payment.duplicate"]
        assert await counters(conn, cal, i) == (0, 1)


async def test_expire_racing_sweep_expires_once(
    conn: asyncpg.Connection, racers: list[asyncpg.Connection]
) -> None:
    """expire_hold and the sweep on the same due hold at once, 20 times: exactly one of them
    expires it (one 'hold.expired' event), and its night is released exactly once."""
    cal = await make_calendar(conn, [("std", 2, 1, 30000)], days=ROUNDS)
    for i in range(ROUNDS):
        hold = await new_hold(conn, cal, i)
        await backdate(conn, hold.id)
        if i % 2:
            swept, expired = await race(
                expire_due_holds(racers[1], 100), expire_hold(racers[0], hold.id)
            )
        else:
            expired, swept = await race(
                expire_hold(racers[0], hold.id), expire_due_holds(racers[1], 100)
            )

        assert swept in ([], [hold.id])
        assert expired is (swept == []), (expired, swept)
        assert await events(conn, hold.id) == ["hold.created", "hold.expired"]
        reason = await conn.fetchval("SELECT cancel_reason FROM holds WHERE id = $1", hold.id)
        assert reason == ("ttl" if expired else "sweep")
        assert await hold_status(conn, hold.id) == "expired"
        assert await counters(conn, cal, i) == (0, 0)


async def sweep_until_empty(conn: asyncpg.Connection, limit: int) -> list[uuid.UUID]:
    """Sweep in batches of ``limit`` until a batch expires nothing; all ids, in order."""
    swept: list[uuid.UUID] = []
    while batch := await expire_due_holds(conn, limit):
        swept += batch
    return swept


@pytest.mark.parametrize("limit", [100, 5])
async def test_two_sweeps_split_due_holds_without_overlap(
    conn: asyncpg.Connection, racers: list[asyncpg.Connection], limit: int
) -> None:
    """Two sweepers at once over 50 due holds (one batch of 100 each, or batches of 5 until
    one comes back empty), 20 times: together they return all 50, no hold twice, each hold
    has one 'hold.expired' event, and every night is given back."""
    due = 50
    cal = await make_calendar(conn, [("std", 2, due, 30000)], days=ROUNDS)
    for i in range(ROUNDS):
        holds = [await new_hold(conn, cal, i) for _ in range(due)]
        await backdate(conn, *(h.id for h in holds))
        first, second = await race(
            sweep_until_empty(racers[0], limit), sweep_until_empty(racers[1], limit)
        )

        assert len(first) == len(set(first)) and len(second) == len(set(second))
        assert not set(first) & set(second)
        assert set(first) | set(second) == {h.id for h in holds}
        expired_events = await conn.fetch(
            "SELECT aggregate_id, count(*) AS n FROM outbox_events"
            " WHERE event_type = 'hold.expired' AND aggregate_id = ANY($1::text[])"
            " GROUP BY aggregate_id",
            [str(h.id) for h in holds],
        )
        assert len(expired_events) == due and all(r["n"] == 1 for r in expired_events)
        assert await conn.fetchval("SELECT count(*) FROM holds WHERE status = 'active'") == 0
        assert await counters(conn, cal, i) == (0, 0)


# --- Idempotency under concurrency ---------------------------------------------------------


@pytest.mark.parametrize("capacity", [10, 1])
async def test_same_request_fifty_times_at_once_makes_one_hold(
    conn: asyncpg.Connection, db_url: str, capacity: int
) -> None:
    """The same create request (same idempotency key) 50 times at once over 50 connections,
    10 times: every call returns the same hold (one created, 49 replayed), there is one hold
    row, one set of nights and one 'hold.created' event, and inv_held is 1. With one room
    left, the retries must still be replays, not 'unavailable'."""
    rounds = 10
    cal = await make_calendar(conn, [("std", 2, capacity, 30000)], days=rounds)
    async with connections(db_url, 50) as conns:
        for i in range(rounds):
            req = request(cal, stay_at(cal, i), {"std": 1}, key=f"whatsapp-msg-{i}")
            results = await race(*(create_hold(c, req, ttl_seconds=TTL) for c in conns))

            assert all(isinstance(r, Hold) for r in results), kinds(results)
            assert len({r.id for r in results}) == 1
            assert sorted(r.replayed for r in results) == [False] + [True] * 49
            hold_id = results[0].id
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM holds WHERE create_idempotency_key = $1",
                    req.idempotency_key,
                )
                == 1
            )
            assert (
                await conn.fetchval("SELECT count(*) FROM hold_nights WHERE hold_id = $1", hold_id)
                == 1
            )
            assert await events(conn, hold_id) == ["hold.created"]
            assert await counters(conn, cal, i) == (1, 0)
