"""Retention (issue 18): rows on each side of each cutoff, guests idle or not, and what an
erased guest leaves behind — nothing that names them, in any column of any table."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
import pytest

from app.backoffice.lookup import show_reservation
from app.backoffice.runner import Scope
from app.backoffice.walk_in import NAME_PURPOSE, create_walk_in
from app.conversations.store import contact_of, insert_inbound, insert_reply
from app.db import QUERIES
from app.inventory.holds import convert_hold, create_hold
from app.inventory.stay import Party, Stay
from app.ops import retention as retention_module
from app.ops.retention import CATEGORIES, retention
from app.tasks.catalog import RETENTION, scheduled
from tests.e2e.conftest import Stack, stack, worker_task  # noqa: F401
from tests.inventory.conftest import Calendar, make_calendar
from tests.inventory.test_setup import PII
from tests.support import app_env, hold_request, run_cli
from tests.test_observability import _events, json_lines  # noqa: F401

NOTHING = dict.fromkeys((c.name for c in CATEGORIES), 0)


@pytest.fixture
async def cal(conn: asyncpg.Connection) -> Calendar:
    return await make_calendar(conn, [("std", 2, 10, 30000)], days=10)


async def stored_text(conn: asyncpg.Connection) -> str:
    """Every row of every table, as Postgres prints it (bytea as hex), in a stable order."""
    tables = await conn.fetch(
        "SELECT format('%I', tablename) AS name FROM pg_tables WHERE schemaname = 'public'"
        " ORDER BY tablename"
    )
    parts = []
    for table in tables:
        query = f"SELECT string_agg(t::text, ' ' ORDER BY t::text) FROM {table['name']} t"  # noqa: S608
        parts.append(f"{table['name']}: {await conn.fetchval(query)}")
    return "\n".join(parts)


def encodings(secret: bytes) -> set[str]:
    """How ``secret`` reads once stored: itself, hex (bytea), and base64 in both alphabets
    at each of the three alignments it can have inside a longer encoded value (only the
    characters its own bytes decide)."""
    forms = {secret.hex()}
    for shift in range(3):
        start, end = -(-4 * shift // 3), 4 * (shift + len(secret)) // 3
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            forms.add(encode(b"\0" * shift + secret).decode()[start:end])
    return forms


def found(text: str, secrets: list[str | bytes]) -> list[str]:
    """The secrets (or an encoding of one) that appear in ``text``."""
    hits = []
    for secret in secrets:
        raw = secret.encode() if isinstance(secret, str) else secret
        plain = isinstance(secret, str) and secret.lower() in text.lower()
        if plain or any(form in text for form in encodings(raw)):
            hits.append(secret if isinstance(secret, str) else secret.hex())
    return hits


def wamid(phone: str) -> str:
    """A WhatsApp message id as Meta makes them: base64 of a record holding the number."""
    digits = "".join(ch for ch in phone if ch.isdigit()).encode()
    record = b"\x18" + bytes([len(digits)]) + digits + b"\x15\x02\x00\x12\x18\x14"
    return "wamid." + base64.b64encode(record + uuid.uuid4().hex[:20].encode()).decode()


@dataclass
class Guest:
    phone: str
    contact_hash: str
    conversation_id: uuid.UUID
    code: str
    receipt: str  # the sealed number and text of their receipt
    secrets: list[str | bytes] = field(default_factory=list)


async def age(conn: asyncpg.Connection, guest: Guest, days: int, *, stay_to_come: bool) -> None:
    """Move every sign of the guest ``days`` into the past (their stay too, unless it is
    still to come)."""
    at = await conn.fetchval("SELECT now() - make_interval(days => $1)", days)
    conv = guest.conversation_id
    for statement, key in (
        ("UPDATE contacts SET created_at = $2 WHERE contact_hash = $1", guest.contact_hash),
        (
            "UPDATE contact_aliases SET created_at = $2, updated_at = $2 WHERE contact_hash = $1",
            guest.contact_hash,
        ),
        (
            "UPDATE conversations SET created_at = $2, updated_at = $2, last_inbound_at = $2"
            " WHERE id = $1",
            conv,
        ),
        (
            "UPDATE messages SET created_at = $2, updated_at = $2 WHERE conversation_id = $1",
            conv,
        ),
        ("UPDATE holds SET created_at = $2, closed_at = $2 WHERE conversation_id = $1", conv),
        (
            "UPDATE payments p SET created_at = $2, updated_at = $2"
            " FROM holds h WHERE h.id = p.hold_id AND h.conversation_id = $1",
            conv,
        ),
        ("UPDATE reservations SET created_at = $2 WHERE code = $1", guest.code),
        (
            "UPDATE processed_events SET received_at = $2, processed_at = $2"
            " WHERE details ->> 'contact_hash' = $1",
            guest.contact_hash,
        ),
    ):
        await conn.execute(statement, key, at)
    if not stay_to_come:
        await conn.execute(
            "UPDATE reservations SET checkin = current_date - $2::integer - 2,"
            " checkout = current_date - $2::integer WHERE code = $1",
            guest.code,
            days,
        )


async def make_guest(
    conn: asyncpg.Connection,
    cal: Calendar,
    phone: str,
    name: str,
    night: int,
    *,
    idle_days: int,
    stay_to_come: bool = False,
) -> Guest:
    """A guest as the WhatsApp path leaves one: their receipt (sealed number and text), a
    contact (sealed phone) with a LID alias, a conversation, their message and our templated
    reply (ids from Meta), a paid reservation of the conversation's hold with their name
    sealed; then everything aged ``idle_days``."""
    text = f"quero reservar o quarto azul, sou {name}"
    lid = f"{uuid.uuid4().int % 10**15}@lid"
    inbound, outbound = wamid(phone), wamid(phone)
    details = {
        "property_id": cal.property.id,
        "contact_hash": PII.contact_hash(phone),
        "lid_hash": PII.contact_hash(lid),
        "phone_known": True,
    }
    sealed = PII.seal(orjson.dumps({"from": phone, "text": text}).decode(), f"whatsapp:{inbound}")
    await conn.execute(
        "INSERT INTO processed_events (source, external_id, event_type, details, processed_at,"
        " outcome) VALUES ('whatsapp', $1, 'message.text', $2, now(), 'replied')",
        inbound,
        {**details, "reading": "text", "sealed": sealed},
    )
    contact = await contact_of(conn, PII, details, phone)
    conversation_id = await conn.fetchval(QUERIES["upsert_conversation"], cal.property.id, contact)
    await insert_inbound(
        conn, PII, conversation_id, text, provider_message_id=inbound, received_at=None
    )
    reply = await insert_reply(
        conn,
        PII,
        conversation_id,
        f"Obrigado, {name}!",
        dedupe_key=f"{inbound}:0",
        template={"kind": "reservation_confirmed", "parameters": [name]},
    )
    await conn.execute(
        "UPDATE messages SET provider_message_id = $2 WHERE id = $1", reply, outbound
    )
    stay = Stay(cal.start + dt.timedelta(days=night), cal.start + dt.timedelta(days=night + 2), 1)
    room = cal.room_type_ids["std"]
    request = hold_request(cal.property.id, stay, [(room, 1)], uuid.uuid4().hex, conversation_id)
    hold = await create_hold(conn, request, ttl_seconds=3600)
    paid = await convert_hold(
        conn,
        hold.id,
        provider_object_id=f"cs_{uuid.uuid4().hex}",
        amount_cents=hold.total_cents,
        currency=hold.currency,
    )
    assert paid.reservation_id is not None and paid.reservation_code is not None
    await conn.execute(
        QUERIES["set_guest_name"],
        paid.reservation_id,
        PII.encrypt(name, NAME_PURPOSE),
        PII.name_index(name),
    )
    await conn.execute(
        QUERIES["save_conversation"],
        conversation_id,
        "booked",
        "pt",
        {"hold_id": str(hold.id), "reservation_code": paid.reservation_code, "said": name},
        True,
    )
    guest = Guest(phone, contact, conversation_id, paid.reservation_code, sealed)
    sealed_columns = await conn.fetch(
        "SELECT k.phone_encrypted AS v FROM contacts k WHERE k.contact_hash = $1"
        " UNION ALL SELECT m.body_encrypted FROM messages m WHERE m.conversation_id = $2"
        " UNION ALL SELECT r.guest_name_sealed FROM reservations r WHERE r.code = $3",
        contact,
        conversation_id,
        paid.reservation_code,
    )
    guest.secrets = [
        phone,
        phone.lstrip("+"),
        name,
        text,
        lid,
        inbound,
        outbound,
        contact,
        details["lid_hash"],
        *PII.name_index(name),
        *(row["v"] for row in sealed_columns),
    ]
    await age(conn, guest, idle_days, stay_to_come=stay_to_come)
    return guest


async def test_rows_on_each_side_of_each_cutoff(
    conn: asyncpg.Connection, cal: Calendar, caplog: pytest.LogCaptureFixture
) -> None:
    """Receipts processed 91 days ago, or unprocessed and received 91 days ago, go; ones
    processed 89 days ago (though received 95 days ago) or received 89 days ago stay.
    Outbox rows enqueued or dead 181 days ago go, 179 days stay, and a pending one stays at
    any age. Keys 31 days old go, 29 stay. Audit rows over 2 years go, under 2 years stay,
    and the audit trigger still refuses to delete a younger row or update any. The preview
    counts exactly that and changes nothing; the run logs one line per category; a second
    run changes nothing."""
    receipt = (
        "INSERT INTO processed_events (source, external_id, event_type, received_at,"
        " processed_at) VALUES ('stripe', $2, 'checkout.session.completed',"
        " now() - make_interval(days => $1), now() - make_interval(days => $3))"
    )
    for name, received, processed in (
        ("gone-processed", 91, 91),
        ("kept-processed-late", 95, 89),
        ("kept-processed", 89, 89),
    ):
        await conn.execute(receipt, received, name, processed)
    unprocessed = (
        "INSERT INTO processed_events (source, external_id, event_type, received_at)"
        " VALUES ('stripe', $2, 'checkout.session.completed', now() - make_interval(days => $1))"
    )
    await conn.execute(unprocessed, 91, "gone-unprocessed")
    await conn.execute(unprocessed, 89, "kept-unprocessed")
    outbox = (
        "INSERT INTO outbox_events (event_type, aggregate_type, aggregate_id, created_at,"
        " enqueued_at, dead_at)"
        " SELECT 'test.fact', 'test', $2, now() - interval '400 days',"
        " CASE WHEN $3 THEN t.ts END, CASE WHEN NOT $3 THEN t.ts END"
        " FROM (SELECT now() - make_interval(days => $1) AS ts) AS t"
    )
    for name, days, sent in (
        ("gone-sent", 181, True),
        ("kept-sent", 179, True),
        ("gone-dead", 181, False),
        ("kept-dead", 179, False),
    ):
        await conn.execute(outbox, days, name, sent)
    await conn.execute(
        "INSERT INTO outbox_events (event_type, aggregate_type, aggregate_id, created_at)"
        " VALUES ('test.fact', 'test', 'kept-pending', now() - interval '400 days')"
    )
    key = (
        "INSERT INTO idempotency_keys (scope, key, fingerprint, created_at)"
        " VALUES ('backoffice:1', $2, 'f', now() - make_interval(days => $1))"
    )
    await conn.execute(key, 31, "gone-key")
    await conn.execute(key, 29, "kept-key")
    audit = (
        "INSERT INTO audit_log (property_id, actor, command, arguments, result, created_at)"
        " VALUES ($1, 'cli', $2, '{}', '{}', now() - interval '2 years' + $3) RETURNING id"
    )
    await conn.fetchval(audit, cal.property.id, "gone-audit", -dt.timedelta(days=1))
    young = await conn.fetchval(audit, cal.property.id, "kept-audit", dt.timedelta(days=1))
    due = NOTHING | {
        "processed_events": 2,
        "outbox_sent": 1,
        "outbox_dead": 1,
        "idempotency_keys": 1,
        "audit_log": 1,
    }
    before = await stored_text(conn)

    preview = await retention(conn, apply=False)
    assert preview == {"command": "retention", "outcome": "preview", "rows": due, "more": []}
    assert await stored_text(conn) == before

    caplog.set_level("INFO", logger="app.ops")
    done = await retention(conn, apply=True)
    assert done == {"command": "retention", "outcome": "applied", "rows": due, "more": []}
    lines = [r for r in caplog.records if r.getMessage() == "retention"]
    assert [(r.category, r.rows, r.applied) for r in lines] == [  # type: ignore[attr-defined]
        (name, count, True) for name, count in due.items()
    ]
    left = " ".join(
        [
            *(r[0] for r in await conn.fetch("SELECT external_id FROM processed_events")),
            *(r[0] for r in await conn.fetch("SELECT aggregate_id FROM outbox_events")),
            *(r[0] for r in await conn.fetch("SELECT key FROM idempotency_keys")),
            *(r[0] for r in await conn.fetch("SELECT command FROM audit_log")),
        ]
    )
    assert "gone-" not in left
    for kept in (
        "processed-late",
        "processed",
        "unprocessed",
        "sent",
        "dead",
        "pending",
        "key",
        "audit",
    ):
        assert f"kept-{kept}" in left.split(), kept

    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await conn.execute("DELETE FROM audit_log WHERE id = $1", young)
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await conn.execute("UPDATE audit_log SET created_at = created_at - interval '3 years'")

    after = await stored_text(conn)
    again = await retention(conn, apply=True)
    assert again["rows"] == NOTHING and again["more"] == []
    assert await stored_text(conn) == after


async def test_batches_repeat_until_a_short_one(
    conn: asyncpg.Connection, cal: Calendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With batches of 2 rows, 5 due keys take three statements and all go; with a cap of
    two batches, 4 go and the category says more are due (the next run takes the rest)."""
    monkeypatch.setattr(retention_module, "BATCH_SIZE", 2)
    insert = (
        "INSERT INTO idempotency_keys (scope, key, fingerprint, created_at)"
        " SELECT 's', 'k' || n, 'f', now() - interval '40 days' FROM generate_series(1, $1) n"
    )
    await conn.execute(insert, 5)
    assert (await retention(conn, apply=True))["rows"]["idempotency_keys"] == 5
    await conn.execute("DELETE FROM idempotency_keys")
    await conn.execute(insert, 5)
    monkeypatch.setattr(retention_module, "MAX_BATCHES", 2)
    capped = await retention(conn, apply=True)
    assert capped["rows"]["idempotency_keys"] == 4 and capped["more"] == ["idempotency_keys"]
    assert (await retention(conn, apply=True))["rows"]["idempotency_keys"] == 1


async def test_idle_guests_are_erased_and_nothing_of_them_is_left(
    db_url: str, conn: asyncpg.Connection, cal: Calendar
) -> None:
    """Five contacts: a guest idle 400 days, one idle as long but with a stay to come, one
    who wrote 10 days ago, one idle 364 days, and an inn's staff member idle 400 days; and
    two desk walk-ins, one whose stay ended 400 days ago and one to come. The preview (the
    CLI's too) counts one guest and one walk-in name and changes nothing. Applied, only
    those are erased: no column of any table holds the guest's phone, name, message text,
    LID, message ids, hashes, name index or the sealed values that were there — plainly,
    in hex or in base64 — while every other guest's are intact, the erased guest's
    reservation, hold and payment stay (only its name is gone), and the calendar is
    unchanged. Writing again, the number starts a new contact and conversation. A second
    run changes nothing."""
    idle = await make_guest(conn, cal, "+5511987654321", "Ximena Quenobi", 0, idle_days=400)
    coming = await make_guest(
        conn, cal, "+5521912345678", "Otavio Pacheco", 2, idle_days=400, stay_to_come=True
    )
    recent = await make_guest(conn, cal, "+5531955554444", "Rosalind Teixeira", 4, idle_days=10)
    almost = await make_guest(conn, cal, "+5541933332222", "Ubirajara Lins", 6, idle_days=364)
    staff = "+5548999990000"
    staff_hash = PII.contact_hash(staff)
    await conn.execute(QUERIES["upsert_contact"], staff_hash, PII.encrypt(staff, "phone"))
    await conn.execute(
        "INSERT INTO staff_numbers (property_id, contact_hash) VALUES ($1, $2)",
        cal.property.id,
        staff_hash,
    )
    await conn.execute(
        "UPDATE contacts SET created_at = now() - interval '400 days' WHERE contact_hash = $1",
        staff_hash,
    )
    scope = Scope(cal.property)
    walk_ins = []
    for name, night in (("Wenceslau Aragao", 1), ("Zuleica Brandao", 3)):
        checkin = cal.start + dt.timedelta(days=night)
        made = await create_walk_in(
            conn,
            scope,
            PII,
            "std",
            checkin,
            checkin + dt.timedelta(days=1),
            Party(1),
            name,
            execute=True,
        )
        walk_ins.append((made["code"], name))
    await conn.execute(
        "UPDATE reservations SET checkin = current_date - 401, checkout = current_date - 400"
        " WHERE code = $1",
        walk_ins[0][0],
    )
    gone_name = await conn.fetchval(
        "SELECT guest_name_sealed FROM reservations WHERE code = $1", walk_ins[0][0]
    )
    erased = [
        *idle.secrets,
        idle.receipt,
        walk_ins[0][1],
        *PII.name_index(walk_ins[0][1]),
        gone_name,
    ]
    kept = [
        *(g.secrets for g in (coming, recent, almost)),
        [staff_hash, walk_ins[1][1]],
    ]
    # The receipts of the guests idle 400 and 364 days are past their 90 days too.
    due = NOTHING | {"guests": 1, "walk_in_names": 1, "processed_events": 3}
    calendar = await conn.fetch("SELECT * FROM ari_days ORDER BY id")
    before = await stored_text(conn)
    # The scan sees what is there: the number inside Meta's ids, the name the context
    # kept, every sealed value, hash and id.
    # Only ever stored sealed or hashed: the number as written, the text, the LID.
    hidden = {idle.secrets[i] for i in (0, 3, 4)}
    assert set(found(before, erased)) == {
        s if isinstance(s, str) else s.hex() for s in erased if s not in hidden
    } - {walk_ins[0][1]}

    preview = await retention(conn, apply=False)
    assert preview["rows"] == due
    cli = await asyncio.to_thread(run_cli, "ops", "retention", env=app_env(DATABASE_URL=db_url))
    assert cli.returncode == 0, cli.stderr
    assert orjson.loads(cli.stdout.splitlines()[-1])["rows"] == due
    assert await stored_text(conn) == before

    assert (await retention(conn, apply=True))["rows"] == due
    after = await stored_text(conn)
    assert found(after, erased) == []
    for secrets in kept:
        assert found(after, list(secrets)) == found(before, list(secrets))
    assert await conn.fetch("SELECT * FROM ari_days ORDER BY id") == calendar

    for guest in (coming, recent, almost):
        sealed = await conn.fetchval(
            "SELECT phone_encrypted FROM contacts WHERE contact_hash = $1", guest.contact_hash
        )
        assert PII.decrypt(sealed, "phone") == guest.phone
    shown = await show_reservation(conn, scope, PII, idle.code)
    assert shown["status"] == "confirmed" and shown["guest_name"] is None
    assert (await show_reservation(conn, scope, PII, coming.code))["guest_name"] == "Otavio Pacheco"
    assert (await show_reservation(conn, scope, PII, walk_ins[1][0]))[
        "guest_name"
    ] == "Zuleica Brandao"
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM holds h JOIN payments p ON p.hold_id = h.id"
            " WHERE h.conversation_id = $1",
            idle.conversation_id,
        )
        == 1
    )

    details = {"property_id": cal.property.id, "contact_hash": idle.contact_hash}
    again = await contact_of(conn, PII, details, idle.phone)
    assert again == idle.contact_hash
    conversation = await conn.fetchval(QUERIES["upsert_conversation"], cal.property.id, again)
    assert conversation != idle.conversation_id
    assert (
        await conn.fetchval("SELECT phone_encrypted FROM contacts WHERE contact_hash = $1", again)
        != b""
    )

    settled = await stored_text(conn)
    assert (await retention(conn, apply=True))["rows"] == NOTHING
    assert await stored_text(conn) == settled


async def test_the_daily_task_applies_retention_and_logs_counts(
    stack: Stack,  # noqa: F811
    json_lines: Callable[[], list[dict[str, Any]]],  # noqa: F811
) -> None:
    """The worker's /tasks/ops/retention (scheduled daily at 04:30 UTC) removes what is due
    and answers 200 with the counts; its log has one `retention` line per category, counts
    and names only."""
    assert RETENTION in scheduled() and RETENTION.schedule == "30 4 * * *"
    await stack.pool.execute(
        "INSERT INTO idempotency_keys (scope, key, fingerprint, created_at)"
        " VALUES ('s', 'old', 'f', now() - interval '31 days')"
    )
    answer = await worker_task(stack, RETENTION.path, {})
    rows = NOTHING | {"idempotency_keys": 1}
    assert answer == {"outcome": "retained", "rows": rows, "more": []}
    lines = _events(json_lines(), "retention")
    assert [(line["category"], line["rows"], line["applied"]) for line in lines] == [
        (name, count, True) for name, count in rows.items()
    ]
    assert await stack.pool.fetchval("SELECT count(*) FROM idempotency_keys") == 0


async def test_console_codes_sessions_and_commands_go_after_30_days(
    conn: asyncpg.Connection,
) -> None:
    cal = await make_calendar(conn, [("std", 2, 1, 30000)], code="console-inn")
    staff = PII.contact_hash("5548991234567")
    await conn.execute(
        "INSERT INTO contacts (contact_hash, phone_encrypted) VALUES ($1, $2)",
        staff,
        PII.encrypt("5548991234567", "phone"),
    )
    for age in ("31 days", "1 day"):
        await conn.execute(
            "INSERT INTO console_sessions (id_hash, contact_hash, csrf_token, created_at,"
            " expires_at) VALUES ($1, $2, 'x', now() - $3::text::interval, now())",
            f"s-{age}",
            staff,
            age,
        )
        await conn.execute(
            "INSERT INTO console_commands (property_id, contact_hash, form_token, command,"
            " arguments, created_at)"
            " VALUES ($1, $2, $3, 'block.add', '{}', now() - $4::text::interval)",
            cal.property.id,
            staff,
            f"t-{age}",
            age,
        )
        await conn.execute(
            "INSERT INTO console_attempts (subject, window_start)"
            " VALUES ($1, now() - $2::text::interval)",
            f"a-{age}",
            age,
        )
    await conn.execute(
        "INSERT INTO console_codes (contact_hash, property_id, code_hmac, created_at, expires_at)"
        " VALUES ($1, $2, 'h', now() - interval '31 days', now() - interval '31 days')",
        staff,
        cal.property.id,
    )
    assert (await retention(conn, apply=True))["rows"]["console"] == 4
    assert await conn.fetchval("SELECT array_agg(id_hash) FROM console_sessions") == ["s-1 day"]
    assert await conn.fetchval("SELECT array_agg(form_token) FROM console_commands") == ["t-1 day"]
    assert await conn.fetchval("SELECT array_agg(subject) FROM console_attempts") == ["a-1 day"]
    assert await conn.fetchval("SELECT count(*) FROM console_codes") == 0
