"""Property import, `ari set` and the ops checks, as library calls and as commands."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import orjson
import pytest

from app.errors import BadRequest, Conflict, NotFound
from app.inventory.holds import create_hold
from app.inventory.property_file import parse_property
from app.inventory.setup import AriChange, import_property, set_ari
from app.inventory.stay import Stay
from app.pii import pii_keys
from app.settings import Secret, Settings
from tests.inventory.conftest import START, make_calendar
from tests.support import ROOT, SERVE_ENV, app_env, hold_request, run_cli

SAMPLE = ROOT / "docs" / "examples" / "property.json"
# The sample names a staff number, which is stored only encrypted.
ICAL_SECRET = "test-ical-secret"
PII = pii_keys(
    Settings(
        database_url=Secret("postgresql://unused"),
        pii_key=Secret(SERVE_ENV["PII_KEY"]),
        contact_hash_key=Secret(SERVE_ENV["CONTACT_HASH_KEY"]),
    )
)


def _sample() -> dict:  # type: ignore[type-arg]
    return json.loads(SAMPLE.read_text())


async def _snapshot(conn) -> list[tuple]:  # type: ignore[no-untyped-def,type-arg]
    rows = await conn.fetch(
        "SELECT a.*, a.xmin::text AS version FROM ari_days a ORDER BY room_type_id, date"
    )
    return [tuple(r) for r in rows]


def test_sample_property_file_matches_its_contract() -> None:
    """The sample is a 3-room-type BRL pousada whose first room type hosts 2+ guests,
    has 2+ units and no stop-sell."""
    spec = parse_property(_sample())
    assert len(spec.room_types) == 3 and spec.currency == "BRL"
    first = spec.room_types[0]
    assert first.max_occupancy >= 2 and first.units >= 2
    assert not any(o.stop_sell for o in spec.overrides if o.room_type == first.code)
    assert spec.whatsapp["phone_number_id"]


async def test_import_is_idempotent(conn) -> None:  # type: ignore[no-untyped-def]
    """Importing the same file twice changes no row (not even its version); 365 nights
    per room type from the import date."""
    spec = parse_property(_sample())
    today = dt.date(2031, 5, 1)
    first = await import_property(conn, spec, today=today, pii=PII, ical_secret=ICAL_SECRET)
    assert first.ari_inserted == 3 * 365 and first.room_types == 3
    before = await _snapshot(conn)
    property_version = await conn.fetchval("SELECT xmin::text FROM properties")
    second = await import_property(conn, spec, today=today, pii=PII, ical_secret=ICAL_SECRET)
    assert (second.ari_inserted, second.ari_updated) == (0, 0)
    assert await _snapshot(conn) == before
    assert await conn.fetchval("SELECT xmin::text FROM properties") == property_version
    dates = await conn.fetchrow("SELECT min(date), max(date) FROM ari_days")
    assert tuple(dates) == (today, today + dt.timedelta(days=364))


async def test_import_applies_overrides_and_updates_changes(conn) -> None:  # type: ignore[no-untyped-def]
    """Per-date overrides set rate/total/stop-sell; a changed file updates only what changed."""
    data = _sample()
    data["dates"] = {"from": "2031-12-28", "to": "2032-01-03"}
    data["overrides"] = [
        {"room_type": "standard", "from": "2031-12-30", "to": "2032-01-01", "rate_cents": 99000},
        {
            "room_type": "familia",
            "from": "2031-12-31",
            "to": "2031-12-31",
            "stop_sell": True,
            "total": 1,
        },
    ]
    await import_property(conn, parse_property(data), pii=PII, ical_secret=ICAL_SECRET)
    rows = {
        (r["code"], r["date"]): (r["inv_total"], r["rate_cents"], r["stop_sell"])
        for r in await conn.fetch(
            "SELECT rt.code, a.date, a.inv_total, a.rate_cents, a.stop_sell"
            " FROM ari_days a JOIN room_types rt ON rt.id = a.room_type_id"
        )
    }
    assert len(rows) == 3 * 7
    assert rows[("standard", dt.date(2031, 12, 29))] == (4, 35000, False)
    assert rows[("standard", dt.date(2031, 12, 30))] == (4, 99000, False)
    assert rows[("familia", dt.date(2031, 12, 31))] == (1, 72000, True)
    data["room_types"][0]["rate_cents"] = 36000
    result = await import_property(conn, parse_property(data), pii=PII, ical_secret=ICAL_SECRET)
    assert (result.ari_inserted, result.ari_updated) == (0, 4)  # 7 nights minus 3 overridden


async def test_import_refuses_total_below_committed(conn) -> None:  # type: ignore[no-untyped-def]
    """Lowering units below what is held on some nights is refused, naming those dates,
    and nothing of the import is written."""
    cal = await make_calendar(conn, [("std", 2, 2, 30000)], days=5)
    stay = Stay(START, START + dt.timedelta(days=2), 2)
    for _ in range(2):
        await create_hold(
            conn,
            hold_request(cal.property.id, stay, ((cal.room_type_ids["std"], 1),), uuid.uuid4().hex),
            ttl_seconds=600,
        )
    with pytest.raises(Conflict) as refused:
        await make_calendar(conn, [("std", 2, 1, 45000)], days=5)
    assert "2031-03-01" in str(refused.value) and "2031-03-02" in str(refused.value)
    assert "2031-03-03" not in str(refused.value)
    assert await conn.fetchval("SELECT count(*) FROM ari_days WHERE rate_cents = 45000") == 0


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("code"), "code"),
        (lambda d: d.update(timezone="Mars/Olympus"), "timezone"),
        (lambda d: d.update(currency="USD"), "currency"),
        (lambda d: d.update(room_types=[]), "room_types"),
        (lambda d: d["room_types"][1].update(units=-1), "room_types[1].units"),
        (lambda d: d["room_types"][0].update(max_occupancy=0), "room_types[0].max_occupancy"),
        (lambda d: d["room_types"][0].update(rate_cents="350"), "room_types[0].rate_cents"),
        (lambda d: d["overrides"][0].update(room_type="suite"), "overrides[0].room_type"),
        (lambda d: d["overrides"][0].update(to="30/12"), "overrides[0].to"),
        (lambda d: d.update(room_types=[d["room_types"][0]] * 2), "unique"),
    ],
)
def test_invalid_property_files_name_the_field(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    """Each malformed field is refused with a message naming it."""
    data = _sample()
    mutate(data)
    with pytest.raises(BadRequest, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_property(data)


async def test_ari_set_changes_range_and_refuses_overcommit(conn, calendar) -> None:  # type: ignore[no-untyped-def]
    """`set_ari` changes rate/total/stop-sell on an inclusive range; a total below the held
    nights is refused naming the dates; unknown codes and dates are clear errors."""
    end = START + dt.timedelta(days=2)

    async def ari(change: AriChange, **where: object) -> int:
        place = {"property_code": "test-inn", "room_type_code": "std", "start": START, "end": end}
        return await set_ari(conn, **{**place, **where}, change=change)  # type: ignore[arg-type]

    assert await ari(AriChange(rate_cents=31000, stop_sell=True)) == 3
    assert await ari(AriChange(rate_cents=31000)) == 0
    stay = Stay(START + dt.timedelta(days=1), START + dt.timedelta(days=2), 2)
    await ari(AriChange(stop_sell=False))
    await create_hold(
        conn,
        hold_request(calendar.property.id, stay, ((calendar.room_type_ids["std"], 1),), "k"),
        ttl_seconds=600,
    )
    with pytest.raises(Conflict, match="2031-03-02"):
        await ari(AriChange(inv_total=0))
    assert await conn.fetchval("SELECT count(*) FROM ari_days WHERE inv_total = 0") == 0
    with pytest.raises(NotFound):
        await ari(AriChange(inv_total=1), property_code="nope")
    with pytest.raises(NotFound):
        await ari(AriChange(inv_total=1), room_type_code="nope")
    with pytest.raises(NotFound, match="2031-04-01"):
        await ari(AriChange(inv_total=1), end=dt.date(2031, 4, 1))
    with pytest.raises(BadRequest):
        await ari(AriChange())


def test_property_and_ari_commands(db_url: str, tmp_path: Path) -> None:
    """`property import` twice changes nothing the second time; `ari set` refuses a total
    below committed nights with exit 1, a JSON error naming the dates and no traceback."""
    env = app_env(
        DATABASE_URL=db_url,
        PII_KEY=SERVE_ENV["PII_KEY"],
        CONTACT_HASH_KEY=SERVE_ENV["CONTACT_HASH_KEY"],
        ICAL_SECRET=ICAL_SECRET,
    )
    first = run_cli("property", "import", str(SAMPLE), env=env)
    assert first.returncode == 0, first.stderr
    assert orjson.loads(first.stdout.splitlines()[-1])["ari_inserted"] == 3 * 365
    second = run_cli("property", "import", str(SAMPLE), env=env)
    assert orjson.loads(second.stdout.splitlines()[-1])["ari_inserted"] == 0
    day = dt.date.today() + dt.timedelta(days=3)
    args = [
        "ari",
        "set",
        "--property",
        "pousada-mare-alta",
        "--room-type",
        "standard",
        "--from",
        day.isoformat(),
        "--to",
        day.isoformat(),
    ]
    ok = run_cli(*args, "--rate-cents", "40000", "--no-stop-sell", env=env)
    assert ok.returncode == 0 and orjson.loads(ok.stdout.splitlines()[-1]) == {"nights_changed": 1}
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as pg:
        pg.execute("UPDATE ari_days SET inv_booked = 2 WHERE date = %s", (day,))
        refused = run_cli(*args, "--total", "1", env=env)
        pg.execute("UPDATE ari_days SET inv_booked = 0 WHERE date = %s", (day,))
    assert refused.returncode == 1
    error = orjson.loads(refused.stdout.splitlines()[-1])
    assert error["error"] == "conflict" and day.isoformat() in error["message"]
    assert "Traceback" not in refused.stdout + refused.stderr
    broken = tmp_path / "bad.json"
    broken.write_text("{not json")
    bad = run_cli("property", "import", str(broken), env=env)
    assert (
        bad.returncode == 1 and orjson.loads(bad.stdout.splitlines()[-1])["error"] == "bad_request"
    )


def test_commands_report_unreachable_database() -> None:
    """A command against a database that does not answer exits 1 with a JSON error."""
    env = app_env(DATABASE_URL="postgresql://postgres@127.0.0.1:1/nothing")
    result = run_cli("ops", "reconcile", env=env)
    assert result.returncode == 1
    assert orjson.loads(result.stdout.splitlines()[-1])["error"] == "database_unreachable"
    assert "Traceback" not in result.stderr


async def test_ops_checks_find_problems_and_exit_nonzero(db_url, conn, calendar) -> None:  # type: ignore[no-untyped-def]
    """`ops reconcile` and `ops stuck-holds` exit 0 on a clean calendar; with a stuck hold
    or a drifted counter they print the rows and exit 1."""
    env = app_env(DATABASE_URL=db_url)
    assert run_cli("ops", "reconcile", env=env).returncode == 0
    assert run_cli("ops", "stuck-holds", env=env).returncode == 0
    stay = Stay(START, START + dt.timedelta(days=1), 2)
    hold = await create_hold(
        conn,
        hold_request(calendar.property.id, stay, ((calendar.room_type_ids["std"], 1),), "s"),
        ttl_seconds=600,
    )
    await conn.execute(
        "UPDATE holds SET expires_at = now() - interval '1 hour' WHERE id = $1", hold.id
    )
    stuck = run_cli("ops", "stuck-holds", env=env)
    assert stuck.returncode == 1 and str(hold.id) in stuck.stdout
    assert orjson.loads(stuck.stdout.splitlines()[-1]) == {"check": "stuck-holds", "found": 1}
    await conn.execute("UPDATE ari_days SET inv_held = inv_held + 1 WHERE date = $1", START)
    drift = run_cli("ops", "reconcile", env=env)
    assert drift.returncode == 1
    assert orjson.loads(drift.stdout.splitlines()[-1]) == {"check": "reconcile", "found": 2}
    await conn.execute("UPDATE ari_days SET inv_held = inv_held - 1 WHERE date = $1", START)
    await conn.execute(
        "UPDATE holds SET expires_at = now() + interval '1 hour' WHERE id = $1", hold.id
    )
