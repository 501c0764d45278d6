"""A randomized model test of the hold lifecycle under concurrency.

Sixteen asyncio tasks, each with its own connection, run batches of random operations
(create, replayed create, conflicting key, expire, cancel, convert, sweep, capacity change)
on a small calendar where rooms sell out. A pure-Python model follows what each operation
returned. After every batch the outcomes must be mutually possible (a hold is closed at
most once and converted at most once, a sweep only takes due holds...), the database must
agree with the model exactly (every night's counters, every hold's status and nights, every
reservation and payment), and the runbook's reconcile must find nothing. Between batches,
sequential probes check outcomes the model predicts exactly. Due holds are made by
backdating expires_at, never by waiting.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from app.errors import AppError, Conflict, IdempotencyConflict, NothingAvailable
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
from app.inventory.setup import AriChange, set_ari
from app.inventory.stay import Party, Stay
from app.ops.checks import run_check
from tests.inventory.conftest import Calendar, make_calendar
from tests.support import connections, hold_request, rooms_of

# (code, max_occupancy, units, rate_cents): few rooms, so nights sell out.
ROOMS = [("std", 2, 3, 30000), ("fam", 4, 2, 50000), ("suite", 2, 1, 80000)]
RATES = {code: rate for code, _, _, rate in ROOMS}
DAYS = 7
TASKS = 16
OPS_PER_TASK = 3
BATCHES = 50  # 50 x 16 x 3 = 2400 concurrent operations, plus the sequential probes
TTL = 3600
PROPERTY = "model-inn"
RESERVATION_CODE = re.compile(r"^[A-HJKMNP-Z2-9]{6}$")

Night = tuple[int, dt.date]  # (room_type_id, date)


@dataclass
class ModelHold:
    id: uuid.UUID
    request: HoldRequest
    total_cents: int
    nights: dict[Night, int]
    status: str = "active"  # active | expired | cancelled | converted
    due: bool = False
    reservation_id: uuid.UUID | None = None
    payment_id: uuid.UUID | None = None  # the payment that converted it


@dataclass
class ModelPayment:
    id: uuid.UUID
    hold_id: uuid.UUID
    status: str  # succeeded | needs_refund
    reservation_id: uuid.UUID | None


@dataclass
class Model:
    cal: Calendar
    totals: dict[Night, int]
    holds: dict[uuid.UUID, ModelHold] = field(default_factory=dict)
    payments: dict[str, ModelPayment] = field(default_factory=dict)  # by provider object id

    def counters(self) -> tuple[Counter[Night], Counter[Night]]:
        """(held, booked) per night, from the holds' own statuses alone."""
        held: Counter[Night] = Counter()
        booked: Counter[Night] = Counter()
        for hold in self.holds.values():
            if hold.status == "active":
                held.update(hold.nights)
            elif hold.status == "converted":
                booked.update(hold.nights)
        return held, booked

    def fits(self, nights: dict[Night, int]) -> bool:
        held, booked = self.counters()
        return all(held[n] + booked[n] + qty <= self.totals[n] for n, qty in nights.items())

    def add_hold(self, hold: Hold, request: HoldRequest) -> None:
        nights = nights_of(request)
        codes = {rt: code for code, rt in self.cal.room_type_ids.items()}
        price = sum(RATES[codes[rt]] * qty for (rt, _), qty in nights.items())
        assert (hold.total_cents, hold.currency) == (price, "BRL"), hold
        assert hold.id not in self.holds and not hold.replayed, hold
        self.holds[hold.id] = ModelHold(hold.id, request, hold.total_cents, nights)


def nights_of(request: HoldRequest) -> dict[Night, int]:
    return {(rt, day): qty for rt, qty in rooms_of(request) for day in request.stay.dates()}


@dataclass
class Op:
    kind: str  # create | replay | conflict | expire | cancel | convert | sweep | capacity
    hold: ModelHold | None = None
    request: HoldRequest | None = None
    object_id: str = ""
    amount_cents: int = 0
    currency: str = "brl"
    reused_payment: bool = False
    limit: int = 0
    room_code: str = ""
    first: dt.date = dt.date.min
    last: dt.date = dt.date.min
    total: int = 0


def random_request(rng: random.Random, cal: Calendar) -> HoldRequest:
    first = rng.randrange(DAYS)
    nights = rng.randint(1, min(3, DAYS - first))
    codes = rng.sample([code for code, *_ in ROOMS], k=rng.choice((1, 1, 1, 2)))
    checkin = cal.start + dt.timedelta(days=first)
    rooms = tuple((cal.room_type_ids[code], rng.choice((1, 1, 2))) for code in codes)
    units = sum(qty for _, qty in rooms)
    return hold_request(
        property_id=cal.property.id,
        stay=Stay(checkin, checkin + dt.timedelta(days=nights), units + rng.randint(0, 1)),
        rooms=rooms,
        idempotency_key=f"k-{uuid.UUID(int=rng.getrandbits(128)).hex}",
    )


def plan_batch(rng: random.Random, model: Model) -> list[Op]:
    """The batch's operations, chosen from the model as it stands before the batch."""
    holds = list(model.holds.values())
    active = [h for h in holds if h.status == "active"]
    # A few 'hot' holds per batch, so several operations race on the same hold.
    due = [h for h in active if h.due]
    hot = (
        rng.sample(due, k=min(3, len(due)))
        + rng.sample(active, k=min(3, len(active)))
        + rng.sample(holds, k=min(2, len(holds)))
    )
    ops: list[Op] = []
    capacity_rooms = [code for code, *_ in ROOMS if rng.random() < 0.7]
    for code in capacity_rooms:  # one per room type at most: its result is then unambiguous
        rt = model.cal.room_type_ids[code]
        first = rng.randrange(DAYS)
        last = rng.randrange(first, min(DAYS, first + 4))
        days = [model.cal.start + dt.timedelta(days=d) for d in range(first, last + 1)]
        held, booked = model.counters()
        committed = max(held[(rt, d)] + booked[(rt, d)] for d in days)
        total = max(0, committed + rng.choice((-1, 0, 1, 2, 3, 4, 5, 6)))
        ops.append(Op("capacity", room_code=code, first=days[0], last=days[-1], total=total))
    while len(ops) < TASKS * OPS_PER_TASK:
        kind = rng.choices(
            ("create", "replay", "conflict", "expire", "cancel", "convert", "sweep"),
            weights=(30, 3, 2, 16, 8, 14, 10),
        )[0]
        if kind == "create" or not hot:
            ops.append(Op("create", request=random_request(rng, model.cal)))
            continue
        hold = rng.choice(hot)
        if kind == "expire" and due and rng.random() < 0.8:
            hold = rng.choice(due)
        if kind == "replay":
            ops.append(Op("replay", hold=hold, request=hold.request))
        elif kind == "conflict":
            ops.append(Op("conflict", hold=hold, request=_one_more_adult(hold.request)))
        elif kind in ("expire", "cancel"):
            ops.append(Op(kind, hold=hold))
        elif kind == "sweep":
            ops.append(Op("sweep", limit=rng.randint(1, 6)))
        else:
            ops.append(_plan_convert(rng, model, hold))
    rng.shuffle(ops)
    return ops


def _one_more_adult(request: HoldRequest) -> HoldRequest:
    """The same key for another request: one more adult in the first unit."""
    stay, (first, *rest) = request.stay, request.units
    party = Party(first.party.adults + 1, first.party.children_ages)
    return dataclasses.replace(
        request,
        stay=Stay(stay.checkin, stay.checkout, stay.guests + 1),
        units=(Unit(first.room_type_id, party), *rest),
    )


def _plan_convert(rng: random.Random, model: Model, hold: ModelHold) -> Op:
    roll = rng.random()
    if roll < 0.06 and model.payments:  # a payment delivered again, maybe for another hold
        object_id = rng.choice(sorted(model.payments))
        return Op(
            "convert",
            hold=hold,
            object_id=object_id,
            amount_cents=hold.total_cents,
            reused_payment=True,
        )
    object_id = f"cs_{uuid.UUID(int=rng.getrandbits(128)).hex}"
    if roll < 0.12:
        return Op("convert", hold=hold, object_id=object_id, amount_cents=hold.total_cents - 1)
    if roll < 0.15:
        return Op(
            "convert", hold=hold, object_id=object_id, amount_cents=hold.total_cents, currency="usd"
        )
    currency = "BRL" if roll < 0.25 else "brl"
    return Op(
        "convert", hold=hold, object_id=object_id, amount_cents=hold.total_cents, currency=currency
    )


async def execute(op: Op, conn: asyncpg.Connection) -> Any:
    """Run one operation; a domain error is its result."""
    try:
        if op.kind in ("create", "replay", "conflict"):
            assert op.request is not None
            return await create_hold(conn, op.request, ttl_seconds=TTL)
        if op.kind == "sweep":
            return await expire_due_holds(conn, op.limit)
        if op.kind == "capacity":
            return await set_ari(
                conn,
                property_code=PROPERTY,
                room_type_code=op.room_code,
                start=op.first,
                end=op.last,
                change=AriChange(inv_total=op.total),
            )
        assert op.hold is not None
        if op.kind == "expire":
            return await expire_hold(conn, op.hold.id)
        if op.kind == "cancel":
            return await cancel_hold(conn, op.hold.id, "model")
        assert op.kind == "convert"
        return await convert_hold(
            conn,
            op.hold.id,
            provider_object_id=op.object_id,
            amount_cents=op.amount_cents,
            currency=op.currency,
        )
    except AppError as exc:
        return exc


async def run_batch(conns: list[asyncpg.Connection], ops: list[Op]) -> list[tuple[Op, Any]]:
    """All tasks at once, each running its share of ``ops`` in turn on its own connection."""

    async def task(share: list[Op], conn: asyncpg.Connection) -> list[tuple[Op, Any]]:
        return [(op, await execute(op, conn)) for op in share]

    shares = await asyncio.gather(
        *(task(ops[i :: len(conns)], c) for i, c in enumerate(conns)), return_exceptions=True
    )
    for share in shares:
        if isinstance(share, BaseException):
            raise share
    return [pair for share in shares for pair in share]


def apply_batch(model: Model, results: list[tuple[Op, Any]]) -> Counter[str]:
    """Check the batch's outcomes against each other and the model, then update the model.

    Order inside a batch is unknown, so each check accepts any order the outcomes allow.
    Returns a tally of outcomes (to show the batch exercised contention).
    """
    before = {hold_id: hold.status for hold_id, hold in model.holds.items()}
    releases: dict[uuid.UUID, list[str]] = {}
    conversions: dict[uuid.UUID, list[Conversion]] = {}
    must_be_closed_in_batch: list[uuid.UUID] = []
    duplicates: list[uuid.UUID] = []
    lates: list[uuid.UUID] = []
    created: list[tuple[Hold, HoldRequest]] = []
    tally: Counter[str] = Counter()

    for op, result in results:
        where = f"{op.kind} {op.hold.id if op.hold else ''} -> {result!r}"
        hold = op.hold
        if op.kind == "create":
            assert isinstance(result, Hold | NothingAvailable), where
            tally["create:" + ("ok" if isinstance(result, Hold) else "unavailable")] += 1
            if isinstance(result, Hold):
                assert op.request is not None
                created.append((result, op.request))
        elif op.kind == "replay":
            assert hold is not None and isinstance(result, Hold), where
            assert result.replayed and result.id == hold.id, where
            assert result.total_cents == hold.total_cents, where
            tally["replay"] += 1
        elif op.kind == "conflict":
            assert isinstance(result, IdempotencyConflict), where
            tally["conflict"] += 1
        elif op.kind in ("expire", "cancel"):
            assert hold is not None and isinstance(result, bool), where
            tally[f"{op.kind}:{result}"] += 1
            if result:
                assert before[hold.id] == "active", where
                assert op.kind == "cancel" or hold.due, f"expired a hold not yet due: {where}"
                releases.setdefault(hold.id, []).append(
                    "expired" if op.kind == "expire" else "cancelled"
                )
            elif before[hold.id] == "active" and (op.kind == "cancel" or hold.due):
                must_be_closed_in_batch.append(hold.id)
        elif op.kind == "sweep":
            assert isinstance(result, list) and len(result) <= op.limit, where
            tally["sweep:" + ("expired" if result else "empty")] += 1
            for hold_id in result:
                assert before.get(hold_id) == "active", where
                assert model.holds[hold_id].due, f"swept a hold not yet due: {where}"
                releases.setdefault(hold_id, []).append("expired")
        elif op.kind == "capacity":
            assert isinstance(result, int | Conflict), where
            assert not isinstance(result, NothingAvailable | IdempotencyConflict), where
            tally["capacity:" + ("set" if isinstance(result, int) else "refused")] += 1
            if isinstance(result, int):
                rt = model.cal.room_type_ids[op.room_code]
                day = op.first
                while day <= op.last:
                    model.totals[(rt, day)] = op.total
                    day += dt.timedelta(days=1)
        else:
            assert op.kind == "convert" and hold is not None, where
            assert isinstance(result, Conversion), where
            tally["convert:" + result.outcome] += 1
            if op.reused_payment:
                earlier = model.payments[op.object_id]
                assert result.outcome == "already_processed", where
                assert result.payment_id == earlier.id, where
                assert result.reservation_id == earlier.reservation_id, where
                continue
            wrong = op.amount_cents != hold.total_cents or op.currency.lower() != "brl"
            assert (result.outcome == "mismatch") is wrong, where
            assert result.outcome in ("converted", "duplicate", "late", "mismatch"), where
            if result.outcome == "converted":
                assert result.reservation_code and RESERVATION_CODE.match(
                    result.reservation_code
                ), where
                assert before[hold.id] != "converted", where
                conversions.setdefault(hold.id, []).append(result)
            else:
                assert result.reservation_id is None, where
            if result.outcome == "duplicate":
                duplicates.append(hold.id)
            elif result.outcome == "late":
                lates.append(hold.id)
            model.payments[op.object_id] = ModelPayment(
                id=result.payment_id,
                hold_id=hold.id,
                status="succeeded" if result.outcome == "converted" else "needs_refund",
                reservation_id=result.reservation_id,
            )

    for hold_id, closed in releases.items():
        assert len(closed) == 1, f"hold {hold_id} closed {len(closed)} times: {closed}"
    for hold_id, converted in conversions.items():
        assert len(converted) == 1, f"hold {hold_id} converted {len(converted)} times"
    for hold_id in must_be_closed_in_batch:
        assert hold_id in releases or hold_id in conversions, f"{hold_id} not closed"
    for hold_id in duplicates:
        assert before[hold_id] == "converted" or hold_id in conversions, hold_id
    for hold_id in lates:
        assert before[hold_id] in ("expired", "cancelled") or hold_id in releases, hold_id

    for hold_id in releases.keys() | conversions.keys():
        hold = model.holds[hold_id]
        if hold_id in conversions:
            # Converted last: a close in the same batch must have come first (late payment).
            hold.status = "converted"
            hold.reservation_id = conversions[hold_id][0].reservation_id
            hold.payment_id = conversions[hold_id][0].payment_id
        else:
            hold.status = releases[hold_id][0]
    for new, request in created:
        model.add_hold(new, request)
    return tally


async def assert_database_matches(conn: asyncpg.Connection, model: Model) -> None:
    """Every night, hold, hold night, reservation and payment is as the model says."""
    held, booked = model.counters()
    for night, total in model.totals.items():
        assert held[night] + booked[night] <= total, f"model overbooked {night}"
    rows = await conn.fetch(
        "SELECT room_type_id, date, inv_total, inv_held, inv_booked FROM ari_days"
    )
    actual = {(r["room_type_id"], r["date"]): tuple(r)[2:] for r in rows}
    expected = {n: (model.totals[n], held[n], booked[n]) for n in model.totals}
    wrong = {n: (actual.get(n), expected[n]) for n in expected if actual.get(n) != expected[n]}
    assert actual.keys() == expected.keys() and not wrong, f"(db, model): {wrong}"

    statuses = {r["id"]: r["status"] for r in await conn.fetch("SELECT id, status FROM holds")}
    assert statuses == {h.id: h.status for h in model.holds.values()}
    due = await conn.fetch("SELECT id FROM holds WHERE status = 'active' AND expires_at <= now()")
    assert {r["id"] for r in due} == {
        h.id for h in model.holds.values() if h.status == "active" and h.due
    }
    nights: dict[uuid.UUID, dict[Night, int]] = {}
    for r in await conn.fetch("SELECT hold_id, room_type_id, date, qty FROM hold_nights"):
        nights.setdefault(r["hold_id"], {})[(r["room_type_id"], r["date"])] = r["qty"]
    assert nights == {h.id: h.nights for h in model.holds.values()}

    reservations = await conn.fetch("SELECT id, hold_id, payment_id, status FROM reservations")
    assert {r["hold_id"]: (r["id"], r["payment_id"], r["status"]) for r in reservations} == {
        h.id: (h.reservation_id, h.payment_id, "confirmed")
        for h in model.holds.values()
        if h.status == "converted"
    }
    payments = await conn.fetch("SELECT id, provider_object_id, hold_id, status FROM payments")
    assert {r["provider_object_id"]: (r["id"], r["hold_id"], r["status"]) for r in payments} == {
        oid: (p.id, p.hold_id, p.status) for oid, p in model.payments.items()
    }
    assert await run_check(conn, "reconcile") == []


async def probe(conn: asyncpg.Connection, model: Model, rng: random.Random, batch: int) -> None:
    """Alone on the calendar, outcomes the model predicts exactly."""
    # A new hold succeeds exactly when the model says every night still has room.
    request = random_request(rng, model.cal)
    expected = model.fits(nights_of(request))
    try:
        hold: Hold | None = await create_hold(conn, request, ttl_seconds=TTL)
    except NothingAvailable:
        hold = None
    assert (hold is not None) is expected, f"model predicted fits={expected} for {request}"
    if hold is not None:
        model.add_hold(hold, request)

    # A late payment re-claims a closed hold's nights exactly when they are all still free.
    closed = [h for h in model.holds.values() if h.status in ("expired", "cancelled")]
    if closed:
        target = rng.choice(closed)
        outcome = "converted" if model.fits(target.nights) else "late"
        object_id = f"cs_probe_{batch}"
        conversion = await convert_hold(
            conn,
            target.id,
            provider_object_id=object_id,
            amount_cents=target.total_cents,
            currency="brl",
        )
        assert conversion.outcome == outcome, (target, conversion)
        model.payments[object_id] = ModelPayment(
            conversion.payment_id,
            target.id,
            "succeeded" if outcome == "converted" else "needs_refund",
            conversion.reservation_id,
        )
        if outcome == "converted":
            target.status = "converted"
            target.reservation_id = conversion.reservation_id
            target.payment_id = conversion.payment_id

    # Now and then a sweep alone expires exactly the due active holds.
    if batch % 5 == 4:
        swept = await expire_due_holds(conn, 10_000)
        due = {h.id for h in model.holds.values() if h.status == "active" and h.due}
        assert sorted(swept) == sorted(due)
        for hold_id in swept:
            model.holds[hold_id].status = "expired"

    # Time passes for some active holds: they become due.
    fresh = [h for h in model.holds.values() if h.status == "active" and not h.due]
    chosen = rng.sample(fresh, k=len(fresh) // 3)
    await conn.execute(
        "UPDATE holds SET expires_at = now() - interval '1 minute' WHERE id = ANY($1::uuid[])",
        [h.id for h in chosen],
    )
    for hold in chosen:
        hold.due = True


@pytest.mark.parametrize("seed", [20310301, 20310302])
async def test_concurrent_operations_agree_with_model(
    conn: asyncpg.Connection, db_url: str, seed: int
) -> None:
    """2400 random create/replay/expire/cancel/convert/sweep/capacity operations from 16
    connections at once, in 50 batches: after every batch the outcomes are mutually possible
    and the database equals a pure-Python model built only from those outcomes (counters,
    statuses, nights, reservations, payments); reconcile finds nothing; and operations run
    alone between batches have exactly the outcome the model predicts."""
    rng = random.Random(seed)
    cal = await make_calendar(conn, ROOMS, code=PROPERTY, days=DAYS)
    totals = {
        (rt, cal.start + dt.timedelta(days=d)): units
        for code, _, units, _ in ROOMS
        for rt in [cal.room_type_ids[code]]
        for d in range(DAYS + 1)  # the calendar has the last night's check-out morning
    }
    model = Model(cal=cal, totals=totals)
    tally: Counter[str] = Counter()
    async with connections(db_url, TASKS) as conns:
        for batch in range(BATCHES):
            results = await run_batch(conns, plan_batch(rng, model))
            tally += apply_batch(model, results)
            await assert_database_matches(conn, model)
            await probe(conn, model, rng, batch)
            await assert_database_matches(conn, model)

    assert sum(tally.values()) == BATCHES * TASKS * OPS_PER_TASK
    # The run exercised contention: sold-out nights, closes that lost races, every outcome.
    for outcome in (
        "create:ok",
        "create:unavailable",
        "expire:True",
        "expire:False",
        "cancel:True",
        "cancel:False",
        "sweep:expired",
        "sweep:empty",
        "convert:converted",
        "convert:late",
        "convert:duplicate",
        "convert:mismatch",
        "convert:already_processed",
        "capacity:set",
        "capacity:refused",
        "replay",
        "conflict",
    ):
        assert tally[outcome] > 0, (outcome, tally)
