"""The command line: ``python -m app <command>`` (also installed as ``hotelly``).

A configuration problem prints one line naming the variable and exits 2. A refused
request (bad input, nothing available, …) exits 1 with a JSON object
``{"error": code, "message": …}`` as the last line, never a traceback. Commands
other than ``serve`` use a single database connection, and each run starts a correlation
id of its own (``cli-…``), carried by every row and task it causes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from dotenv import load_dotenv

from app import db
from app.errors import AppError, BadRequest
from app.inventory.property_file import WEEKDAYS
from app.local import beside_make_run, local_environment
from app.logging import configure_logging, correlation_id
from app.settings import ConfigError, Settings, environment_of, load_settings

EXIT_CONFIG = 2

Handler = Callable[[Settings, argparse.Namespace], int]
DbHandler = Callable[[asyncpg.Connection, Settings, argparse.Namespace], Awaitable[int]]


def emit(value: Any) -> None:
    """One JSON object on its own line: the machine-readable result of a command."""
    print(orjson.dumps(value, default=str).decode(), flush=True)


def _with_connection(handler: DbHandler) -> Handler:
    def run(settings: Settings, args: argparse.Namespace) -> int:
        async def main() -> int:
            conn = await db.connect(settings.database_url.reveal())
            try:
                return await handler(conn, settings, args)
            finally:
                await conn.close()

        return asyncio.run(main())

    return run


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from app.serve import serve

    serve(settings)
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from app.migrate import migrate

    emit({"applied": migrate(settings.database_url.reveal())})
    return 0


def _check_config(settings: Settings, args: argparse.Namespace) -> int:
    emit(repr(settings))
    return 0


async def _property_import(
    conn: asyncpg.Connection, settings: Settings, args: argparse.Namespace
) -> int:
    from app.inventory.property_file import parse_property
    from app.inventory.setup import import_property
    from app.pii import pii_keys

    try:
        # One small file, read before anything else runs on this loop.
        data = orjson.loads(Path(args.file).read_bytes())  # noqa: ASYNC240
    except OSError as exc:
        raise BadRequest(f"cannot read {args.file}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"{args.file} is not valid JSON: {exc}") from None
    pii = pii_keys(settings) if settings.pii_key and settings.contact_hash_key else None
    secret = settings.ical_secret.reveal() if settings.ical_secret else None
    result = await import_property(
        conn, parse_property(data), pii=pii, ical_secret=secret, reset_manual=args.reset_manual
    )
    emit(vars(result))
    return 0


async def _ari_set(conn: asyncpg.Connection, settings: Settings, args: argparse.Namespace) -> int:
    from app.inventory.setup import AriChange, set_ari

    changed = await set_ari(
        conn,
        property_code=args.property,
        room_type_code=args.room_type,
        start=args.start,
        end=args.end,
        change=AriChange(
            inv_total=args.total,
            rate_cents=args.rate_cents,
            extra_adult_cents=args.extra_adult_cents,
            min_stay=args.min_stay,
            max_stay=args.max_stay,
            closed_to_arrival=args.closed_to_arrival,
            closed_to_departure=args.closed_to_departure,
            stop_sell=args.stop_sell,
        ),
        weekdays=frozenset(WEEKDAYS.index(day) for day in args.weekdays) if args.weekdays else None,
    )
    emit({"nights_changed": changed})
    return 0


def _ops_check(name: str) -> DbHandler:
    async def run(conn: asyncpg.Connection, settings: Settings, args: argparse.Namespace) -> int:
        from app.ops.checks import run_check

        rows = await run_check(conn, name)
        for row in rows:
            emit(row)
        emit({"check": name, "found": len(rows)})
        return 1 if rows else 0

    return run


async def _ops_conflicts(conn: asyncpg.Connection, settings: Settings, args: Any) -> int:
    from app.ops.checks import run_check

    rows = await run_check(conn, "conflicts")
    emit({"conflicts": rows})
    return 1 if rows else 0


async def _ops_channels(conn: asyncpg.Connection, settings: Settings, args: Any) -> int:
    from app.ops.checks import run_check

    rows = await run_check(conn, "channels")
    fields = ("property", "calendar", "last_success_at", "last_error", "consecutive_failures")
    emit({"calendars": [{**{k: row[k] for k in fields}, "stale": row["stale"]} for row in rows]})
    failing = any(row["stale"] or (row["imports"] and row["last_error"]) for row in rows)
    return 1 if failing else 0


async def _channels_urls(conn: asyncpg.Connection, settings: Settings, args: Any) -> int:
    from app.channels.calendars import export_urls

    secret = settings.ical_secret.reveal() if settings.ical_secret else None
    urls = await export_urls(conn, settings.public_url, secret, args.property)
    for url in urls:
        emit(url)
    emit({"property": args.property, "calendars": len(urls)})
    return 0


def _api_pepper(settings: Settings) -> str:
    if settings.api_key_pepper is None:
        raise ConfigError("API_KEY_PEPPER", "is required to make or check API keys")
    return settings.api_key_pepper.reveal()


async def _api_key_create(conn: asyncpg.Connection, settings: Settings, args: Any) -> int:
    from app.api import keys

    made = await keys.create(conn, _api_pepper(settings), args.property, args.scope, args.name)
    emit({**made, "note": "shown once: store it now"})
    return 0


async def _api_key_list(conn: asyncpg.Connection, settings: Settings, args: Any) -> int:
    from app.api import keys

    found = await keys.listed(conn, args.property)
    for key in found:
        emit(key)
    emit({"property": args.property, "keys": len(found)})
    return 0


async def _api_key_revoke(conn: asyncpg.Connection, settings: Settings, args: Any) -> int:
    from app.api import keys

    emit(await keys.revoke(conn, args.id))
    return 0


async def _channels_rotate(conn: asyncpg.Connection, settings: Settings, args: Any) -> int:
    from app.channels.calendars import rotate

    secret = settings.ical_secret.reveal() if settings.ical_secret else None
    emit(await rotate(conn, settings.public_url, secret, args.property, args.calendar))
    return 0


DevCommand = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]]


def _dev(name: str) -> Handler:
    """The command ``name`` of app.dev.commands, imported only when it runs: the production
    image has no app/dev, and every other command must work there."""

    def run(settings: Settings, args: argparse.Namespace) -> int:
        from app.dev import commands

        command: DevCommand = getattr(commands, name)
        emit(asyncio.run(command(settings, args)))
        return 0

    return run


def _outside_dev() -> str | None:
    """Why dev commands must not run here, if so: they drive make run's fakes and trust
    whatever a developer's machine serves. ENV is read as make run sees it (.env.example's
    values under the real environment); the image has no .env.example, so it is prod there."""
    try:
        environment = environment_of(local_environment())
    except ConfigError as exc:
        return f"configuration error: {exc}"
    if environment != "dev":
        return f"dev commands run only with ENV=dev (ENV is {environment})"
    return None


def _dev_transcript(settings: Settings, args: argparse.Namespace) -> int:
    from app.dev.commands import dev_transcript

    lines = asyncio.run(dev_transcript(settings, args))
    for line in lines:
        print(line)
    inbound = sum(1 for line in lines if line.split(" ", 2)[1] == "in")
    emit({"messages": len(lines), "inbound": inbound, "outbound": len(lines) - inbound})
    return 0


def _ops_expire_stuck(settings: Settings, args: argparse.Namespace) -> int:
    from app.inventory.holds import expire_due_holds
    from app.tasks.outbox import relaying
    from app.tasks.queue import TaskQueue, queue_config

    async def main() -> list[uuid.UUID]:
        pool = await db.create_pool(settings.database_url.reveal(), 1)
        queue = TaskQueue(queue_config(settings))
        try:
            async with relaying(pool, queue), pool.acquire() as conn:  # guests hear of it
                return await expire_due_holds(conn, args.limit)
        finally:
            await queue.close()
            await pool.close()

    expired = asyncio.run(main())
    emit({"expired": len(expired), "hold_ids": [str(h) for h in expired]})
    return 0


def _ops_outbox_retry(settings: Settings, args: argparse.Namespace) -> int:
    from app.tasks.outbox import retry_dead
    from app.tasks.queue import TaskQueue, queue_config

    async def main() -> dict[str, Any]:
        pool = await db.create_pool(settings.database_url.reveal(), 1)
        queue = TaskQueue(queue_config(settings))
        try:
            return await retry_dead(pool, queue, args.outbox_id)
        finally:
            await queue.close()
            await pool.close()

    result = asyncio.run(main())
    emit(result)
    return 0 if result["outcome"] == "enqueued" else 1


def _ops_reprocess(settings: Settings, args: argparse.Namespace) -> int:
    from app.ops.reprocess import reprocess

    events = asyncio.run(reprocess(settings, args.source, args.limit))
    for item in events:
        emit(item)
    emit({"source": args.source, "reprocessed": len(events)})
    return 0


async def _ops_status(conn: asyncpg.Connection, settings: Settings, args: Any) -> int:
    from app.ops.status import check_status, screen, summary
    from app.ops.tasks_backlog import backlog_of

    results = await check_status(conn, await backlog_of(settings))
    print("\n".join(screen(results)))
    emit(summary(results))
    return 1 if any(result.breached for result in results) else 0


def _ops_tasks(settings: Settings, args: argparse.Namespace) -> int:
    from app.ops.status import backlog_checks, screen, summary
    from app.ops.tasks_backlog import backlog_of

    results = backlog_checks(asyncio.run(backlog_of(settings)))
    print("\n".join(screen(results)))
    emit(summary(results))
    return 1 if any(result.breached for result in results) else 0


async def _ops_db(conn: asyncpg.Connection, settings: Settings, args: Any) -> int:
    from app.ops.db_health import db_health, report, summary

    health = await db_health(conn, args.longer_than)
    print("\n".join(report(health)))
    emit(summary(health))
    return 1 if health.problems() else 0


async def _ops_pause(conn: asyncpg.Connection, settings: Settings, args: Any) -> int:
    from app.ops.pause import operator, pause_provider, resume_provider

    actor = operator(args.actor)
    if args.action == "pause":
        emit(await pause_provider(conn, args.provider, actor, args.reason, execute=args.apply))
    else:
        emit(await resume_provider(conn, args.provider, actor, execute=args.apply))
    return 0


def _ops_stripe_backfill(settings: Settings, args: argparse.Namespace) -> int:
    from app.ops.stripe_backfill import backfill, parse_since
    from app.payments.stripe_api import open_stripe
    from app.tasks.queue import TaskQueue, queue_config

    since = parse_since(args.since)
    if settings.stripe_secret_key is None:
        raise BadRequest("STRIPE_SECRET_KEY is not set")

    async def main() -> list[dict[str, Any]]:
        # Two connections: a receipt's enqueued mark is written beside the next receipt.
        pool = await db.create_pool(settings.database_url.reveal(), 2)
        queue = TaskQueue(queue_config(settings))
        api = open_stripe(settings)
        try:
            return await backfill(pool, queue, api.client, settings, since, execute=args.apply)
        finally:
            await api.close()
            await queue.close()
            await pool.close()

    listed = asyncio.run(main())
    for item in listed:
        emit(item)
    missing = [item for item in listed if not item["received"]]
    emit(
        {
            "check": "stripe-backfill",
            "since": args.since,
            "undelivered": len(listed),
            "missing": len(missing),
            "recorded": sum(1 for item in missing if item.get("outcome") == "enqueued"),
            "applied": args.apply,
        }
    )
    return 1 if missing and not args.apply else 0


def _ops_refund(settings: Settings, args: argparse.Namespace) -> int:
    from app.ops.manual_refund import refund_payment
    from app.ops.pause import operator
    from app.tasks.outbox import relaying
    from app.tasks.queue import TaskQueue, queue_config

    async def main() -> dict[str, Any]:
        pool = await db.create_pool(settings.database_url.reveal(), 1)
        queue = TaskQueue(queue_config(settings))
        try:  # the refund's task is enqueued right after the commit
            async with relaying(pool, queue), pool.acquire() as conn:
                actor = operator(args.actor)
                return await refund_payment(conn, args.payment_id, actor, execute=args.apply)
        finally:
            await queue.close()
            await pool.close()

    emit(asyncio.run(main()))
    return 0


async def _ops_repair_ari(conn: asyncpg.Connection, settings: Settings, args: Any) -> int:
    from app.backoffice.runner import scope_of
    from app.ops.repair_ari import repair_ari

    result = await repair_ari(conn, await scope_of(conn, args.property), apply=args.apply)
    for change in result["changes"]:
        emit(change)
    emit({key: value for key, value in result.items() if key != "changes"})
    return 0


async def _ops_retention(conn: asyncpg.Connection, settings: Settings, args: Any) -> int:
    from app.ops.retention import retention

    emit(await retention(conn, apply=args.apply))
    return 0


BackOffice = Callable[[asyncpg.Connection, Any, argparse.Namespace], Awaitable[dict[str, Any]]]


def _backoffice(command: BackOffice) -> Handler:
    """A back-office command on the property ``--property`` as actor ``cli``; the outbox
    rows it writes (a refund's task, the guest's and staff's notices) are relayed after it.
    A preview exits 0 and changes nothing."""

    def run(settings: Settings, args: argparse.Namespace) -> int:
        from app.backoffice.runner import scope_of
        from app.tasks.outbox import relaying
        from app.tasks.queue import TaskQueue, queue_config

        async def main() -> dict[str, Any]:
            pool = await db.create_pool(settings.database_url.reveal(), 1)
            queue = TaskQueue(queue_config(settings))
            try:
                async with relaying(pool, queue), pool.acquire() as conn:
                    scope = await scope_of(conn, args.property)
                    args.settings = settings
                    return await command(conn, scope, args)
            finally:
                await queue.close()
                await pool.close()

        emit(asyncio.run(main()))
        return 0

    return run


def _pii(args: argparse.Namespace) -> Any:
    from app.pii import pii_keys

    try:
        return pii_keys(args.settings)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


async def _reservation_show(conn: asyncpg.Connection, scope: Any, args: Any) -> dict[str, Any]:
    from app.backoffice.lookup import show_reservation

    return await show_reservation(conn, scope, _pii(args), args.code)


async def _reservation_search(conn: asyncpg.Connection, scope: Any, args: Any) -> dict[str, Any]:
    from app.backoffice.lookup import find_by_name

    return {"codes": await find_by_name(conn, scope, _pii(args), args.name)}


async def _reservation_cancel(conn: asyncpg.Connection, scope: Any, args: Any) -> dict[str, Any]:
    from app.backoffice.cancel import cancel_reservation

    return await cancel_reservation(
        conn,
        scope,
        args.code,
        refund_percent=args.refund_percent,
        execute=args.apply,
        expected=args.preview,
    )


async def _reservation_create(conn: asyncpg.Connection, scope: Any, args: Any) -> dict[str, Any]:
    from app.backoffice.walk_in import create_walk_in
    from app.inventory.stay import Party

    return await create_walk_in(
        conn,
        scope,
        _pii(args),
        args.room_type,
        args.checkin,
        args.checkout,
        Party(args.adults, tuple(args.children_ages)),
        args.name,
        execute=args.apply,
        expected=args.preview,
    )


async def _block(conn: asyncpg.Connection, scope: Any, args: Any) -> dict[str, Any]:
    from app.backoffice.blocks import block_units, unblock_units

    command = block_units if args.action == "add" else unblock_units
    return await command(
        conn,
        scope,
        args.room_type,
        args.start,
        args.end,
        args.units,
        execute=args.apply,
        expected=args.preview,
    )


async def _reservations(conn: asyncpg.Connection, scope: Any, args: Any) -> dict[str, Any]:
    from app.backoffice.lookup import day_at_inn

    return await day_at_inn(conn, scope, _pii(args), args.date)


async def _link(conn: asyncpg.Connection, scope: Any, args: Any) -> dict[str, Any]:
    from app.backoffice.links import resend_link
    from app.payments.stripe_api import open_stripe

    if args.settings.stripe_secret_key is None:
        raise BadRequest("STRIPE_SECRET_KEY is not set")
    api = open_stripe(args.settings)
    try:
        return await resend_link(
            conn,
            scope,
            api.client,
            args.settings,
            _pii(args),
            hold=args.hold,
            phone=args.phone,
            execute=args.apply,
        )
    finally:
        await api.close()


async def _holds(conn: asyncpg.Connection, scope: Any, args: Any) -> dict[str, Any]:
    from app.backoffice.lookup import holds_awaiting_payment

    return {"holds": await holds_awaiting_payment(conn, scope)}


def _dev_up(args: argparse.Namespace) -> int:
    from app.dev.stack import run_stack

    return run_stack()


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a YYYY-MM-DD date") from None


def _ages(value: str) -> list[int]:
    try:
        return [int(age) for age in value.split(",") if age.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not ages like 5,8") from None


def _weekdays(value: str) -> list[str]:
    days = [day.strip().lower() for day in value.split(",") if day.strip()]
    unknown = [day for day in days if day not in WEEKDAYS]
    if unknown or not days:
        raise argparse.ArgumentTypeError(f"{value!r} is not weekdays like fri,sat")
    return days


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotelly", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def command(parent: Any, name: str, help: str, **defaults: Any) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = parent.add_parser(name, help=help)
        sub.set_defaults(**defaults)
        return sub

    command(commands, "serve", "serve the app for ROLE on PORT", run=_serve, require_role=True)
    command(commands, "migrate", "apply sql/migrations (safe to repeat)", run=_migrate)
    command(commands, "check-config", "validate the environment", run=_check_config)

    prop = commands.add_parser("property", help="property setup").add_subparsers(
        dest="sub", required=True
    )
    imported = command(
        prop,
        "import",
        "create or update a property from a JSON file",
        run=_with_connection(_property_import),
    )
    imported.add_argument("file")
    imported.add_argument(
        "--reset-manual",
        action="store_true",
        help="also replace the values set by hand (ari set) with the file's",
    )

    ari = commands.add_parser("ari", help="availability, rates and restrictions").add_subparsers(
        dest="sub", required=True
    )
    ari_set = command(
        ari, "set", "change a date range (both ends inclusive)", run=_with_connection(_ari_set)
    )
    ari_set.add_argument("--property", required=True)
    ari_set.add_argument("--room-type", required=True)
    ari_set.add_argument("--from", dest="start", type=_date, required=True)
    ari_set.add_argument("--to", dest="end", type=_date, required=True)
    ari_set.add_argument("--total", type=int)
    ari_set.add_argument("--rate-cents", type=int)
    ari_set.add_argument("--extra-adult-cents", type=int)
    ari_set.add_argument("--min-stay", type=int, help="nights; 0 clears the rule")
    ari_set.add_argument("--max-stay", type=int, help="nights; 0 clears the rule")
    for flag in ("--closed-to-arrival", "--closed-to-departure", "--stop-sell"):
        ari_set.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
    ari_set.add_argument("--weekdays", type=_weekdays, help="only these days of the range: fri,sat")

    def changing(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--apply", action="store_true", help="do it (default: preview only)")
        sub.add_argument(
            "--preview", metavar="ID", help="apply only if the effect is still this preview's"
        )
        return sub

    reservation = commands.add_parser(
        "reservation", help="a reservation, as the inn's staff handle it"
    ).add_subparsers(dest="sub", required=True)
    show = command(
        reservation, "show", "a reservation by its code", run=_backoffice(_reservation_show)
    )
    show.add_argument("code", metavar="CODE")
    show.add_argument("--property", required=True)
    search = command(
        reservation,
        "search",
        "reservations by the guest's name (every word given)",
        run=_backoffice(_reservation_search),
    )
    search.add_argument("--property", required=True)
    search.add_argument("--name", required=True)
    cancel_res = changing(
        command(
            reservation,
            "cancel",
            "cancel, refunding what the policy gives",
            run=_backoffice(_reservation_cancel),
        )
    )
    cancel_res.add_argument("code", metavar="CODE")
    cancel_res.add_argument("--property", required=True)
    cancel_res.add_argument("--refund-percent", type=int, help="instead of the policy's")
    create = changing(
        command(
            reservation,
            "create",
            "a walk-in or phone reservation, paid at the desk",
            run=_backoffice(_reservation_create),
        )
    )
    create.add_argument("--property", required=True)
    create.add_argument("--room-type", required=True)
    create.add_argument("--checkin", type=_date, required=True)
    create.add_argument("--checkout", type=_date, required=True)
    create.add_argument("--adults", type=int, required=True)
    create.add_argument(
        "--children-ages", type=_ages, default=[], help="each child's age: 5,8", metavar="AGES"
    )
    create.add_argument("--name", required=True, help="the guest's name (kept encrypted)")

    block = commands.add_parser("block", help="units taken off sale by hand").add_subparsers(
        dest="sub", required=True
    )
    for action, help_text in (("add", "block units"), ("remove", "give blocked units back")):
        sub = changing(command(block, action, help_text, run=_backoffice(_block), action=action))
        sub.add_argument("--property", required=True)
        sub.add_argument("--room-type", required=True)
        sub.add_argument("--from", dest="start", type=_date, required=True, help="check-in")
        sub.add_argument(
            "--to", dest="end", type=_date, required=True, help="check-out (the morning after)"
        )
        sub.add_argument("--units", type=int, default=1)

    day = command(
        commands,
        "reservations",
        "a day at the inn: arrivals, departures, in-house",
        run=_backoffice(_reservations),
    )
    day.add_argument("--property", required=True)
    day.add_argument("--date", type=_date, required=True)
    command(commands, "holds", "holds awaiting payment", run=_backoffice(_holds)).add_argument(
        "--property", required=True
    )
    link = command(
        commands,
        "link",
        "send a guest the payment link of their active hold again",
        run=_backoffice(_link),
    )
    link.add_argument("--property", required=True)
    whose = link.add_mutually_exclusive_group(required=True)
    whose.add_argument("--hold", metavar="REF", help="the hold id, or its first characters")
    whose.add_argument("--phone", help="the guest's WhatsApp number")
    link.add_argument("--apply", action="store_true", help="send it (default: preview only)")

    def _deploy(args: argparse.Namespace) -> int:
        # An operator's tool, run from a checkout: imported only when it runs (the image
        # has neither deploy/ nor the YAML parser it reads it with).
        try:
            from app.deploy.command import run_deploy
        except ModuleNotFoundError as exc:
            print(f"hotelly: deploy runs from a checkout (make install): {exc}", file=sys.stderr)
            return EXIT_CONFIG
        return run_deploy(args)

    deploy = commands.add_parser(
        "deploy", help="both roles on Cloud Run, from a checkout (docs/deploy.md)"
    ).add_subparsers(dest="sub", required=True)
    for action, help_text in (
        ("plan", "print the gcloud commands in order; runs nothing, needs no credentials"),
        ("apply", "run them with gcloud from PATH (safe to repeat)"),
    ):
        sub = command(deploy, action, help_text, run_raw=_deploy)
        sub.add_argument("--project", required=True)
        sub.add_argument("--region", required=True)
        sub.add_argument("--worker-url", help="default: Cloud Run's URL of hotelly-worker")
        sub.add_argument("--tag", help="the image's tag (default: the commit checked out)")
        sub.add_argument("--cloudsql-instance", help="default: hotelly")
        sub.add_argument("--alert-email", help="the address the alert policies page")

    ops = commands.add_parser("ops", help="runbook checks and repairs").add_subparsers(
        dest="sub", required=True
    )
    command(
        ops,
        "reconcile",
        "ARI counters vs holds and reservations (exit 1 if any differ)",
        run=_with_connection(_ops_check("reconcile")),
    )
    command(
        ops,
        "stuck-holds",
        "active holds long past expiry (exit 1 if any)",
        run=_with_connection(_ops_check("stuck-holds")),
    )
    command(
        ops,
        "payments-without-reservation",
        "paid or refund-pending payments with no reservation (exit 1 if any)",
        run=_with_connection(_ops_check("payments-without-reservation")),
    )
    command(
        ops,
        "stale-receipts",
        "provider events unfinished 10 minutes after their task was enqueued (exit 1 if any)",
        run=_with_connection(_ops_check("stale-receipts")),
    )
    command(
        ops,
        "outbox-dead",
        "outbox rows set aside after their last failed attempt (exit 1 if any)",
        run=_with_connection(_ops_check("outbox-dead")),
    )
    command(
        ops, "outbox-retry", "give a dead outbox row one more try", run=_ops_outbox_retry
    ).add_argument("outbox_id", metavar="ID", type=int)
    command(
        ops,
        "conflicts",
        "channel events that could not take their nights (exit 1 if any)",
        run=_with_connection(_ops_conflicts),
    )
    command(
        ops,
        "channels",
        "each channel calendar's sync health (exit 1 if one is stale or failing)",
        run=_with_connection(_ops_channels),
    )
    command(
        ops, "expire-stuck", "expire overdue holds now (the worker's sweep)", run=_ops_expire_stuck
    ).add_argument("--limit", type=int, default=100)
    reprocess = command(
        ops, "reprocess", "re-enqueue receipts that never finished", run=_ops_reprocess
    )
    reprocess.add_argument("--source", choices=["stripe", "whatsapp"], required=True)
    reprocess.add_argument("--limit", type=int, default=50)
    for action, help_text in (
        ("pause", "answer a provider's webhooks 503 + Retry-After (it retries them later)"),
        ("resume", "take a paused provider's webhooks again"),
    ):
        paused = command(ops, action, help_text, run=_with_connection(_ops_pause), action=action)
        paused.add_argument("provider", choices=["stripe", "whatsapp"])
        if action == "pause":
            paused.add_argument("--reason", help="why, for the audit log")
        paused.add_argument("--actor", help="who does it (default: cli:<login name>)")
        paused.add_argument("--apply", action="store_true", help="do it (default: preview only)")
    backfill = command(
        ops,
        "stripe-backfill",
        "Stripe events never delivered, fed through the webhook's receipt path",
        run=_ops_stripe_backfill,
    )
    backfill.add_argument("--since", default="3d", help="how far back: 3d, 12h, 90m (max 30d)")
    backfill.add_argument(
        "--apply", action="store_true", help="record them (default: list only; exit 1 if missing)"
    )
    refund = command(ops, "refund", "refund a needs_refund payment by hand", run=_ops_refund)
    refund.add_argument("payment_id", metavar="PAYMENT_ID", type=uuid.UUID, help="payments.id")
    refund.add_argument("--actor", help="who does it (default: cli:<login name>)")
    refund.add_argument("--apply", action="store_true", help="do it (default: preview only)")
    command(
        ops,
        "status",
        "the daily routine: every check against its threshold (exit 1 if any is breached)",
        run=_with_connection(_ops_status),
    )
    command(
        ops,
        "tasks",
        "each Cloud Tasks queue's depth and soonest due task (exit 1 if one is late)",
        run=_ops_tasks,
    )
    command(
        ops,
        "db",
        "connections, long transactions, lock waits and pools (exit 1 on a problem)",
        run=_with_connection(_ops_db),
    ).add_argument(
        "--longer-than",
        type=int,
        metavar="SECONDS",
        help="list transactions open longer than this (default 60)",
    )
    repair = command(
        ops,
        "repair-ari",
        "set a property's calendar counters to its holds, reservations and blocks",
        run=_with_connection(_ops_repair_ari),
    )
    repair.add_argument("--property", required=True)
    repair.add_argument("--apply", action="store_true", help="write them (default: preview only)")
    command(
        ops,
        "retention",
        "old receipts, outbox rows, keys and audit rows removed; idle guests erased",
        run=_with_connection(_ops_retention),
    ).add_argument("--apply", action="store_true", help="do it (default: counts only)")

    channels = commands.add_parser("channels", help="channel calendars (iCal)").add_subparsers(
        dest="sub", required=True
    )
    command(
        channels, "urls", "every export URL of a property", run=_with_connection(_channels_urls)
    ).add_argument("--property", required=True)
    rotate = command(
        channels,
        "rotate",
        "a new export URL for a calendar (the old one answers 404)",
        run=_with_connection(_channels_rotate),
    )
    rotate.add_argument("--property", required=True)
    rotate.add_argument("--calendar", required=True)

    api_key = commands.add_parser("api-key", help="the inn API's keys").add_subparsers(
        dest="sub", required=True
    )
    create = command(
        api_key,
        "create",
        "a key for one property (printed once)",
        run=_with_connection(_api_key_create),
    )
    create.add_argument("--property", required=True)
    create.add_argument("--scope", choices=["read", "write"], required=True)
    create.add_argument("--name", required=True)
    command(
        api_key,
        "list",
        "a property's keys (never the key itself)",
        run=_with_connection(_api_key_list),
    ).add_argument("--property", required=True)
    command(
        api_key, "revoke", "revoke a key for good", run=_with_connection(_api_key_revoke)
    ).add_argument("id", type=int)

    dev = commands.add_parser("dev", help="local development commands").add_subparsers(
        dest="sub", required=True
    )
    command(dev, "up", "the whole system on this machine (what `make run` runs)", run_raw=_dev_up)

    hold = command(dev, "hold", "hold nights and open their Checkout Session", run=_dev("dev_hold"))
    hold.add_argument("--property", required=True)
    hold.add_argument("--room-type", required=True)
    hold.add_argument("--checkin", type=_date, required=True)
    hold.add_argument("--checkout", type=_date, required=True)
    hold.add_argument("--guests", type=int, default=2, help="that many adults")
    hold.add_argument("--adults", type=int, help="adults (instead of --guests)")
    hold.add_argument(
        "--children-ages", type=_ages, default=[], help="each child's age: 5,8", metavar="AGES"
    )
    hold.add_argument("--idempotency-key")
    pay = command(
        dev, "pay", "pay a hold in the fake Stripe and deliver Stripe's event", run=_dev("dev_pay")
    )
    pay.add_argument("hold_id", metavar="HOLD_ID", help="a hold id, or the cs_… id in its link")
    pay.add_argument("--payment-status", choices=["paid", "unpaid"], default="paid")
    whatsapp = command(
        dev,
        "whatsapp",
        "send a guest's message to the webhook as Meta would",
        run=_dev("dev_whatsapp"),
    )
    whatsapp.add_argument("--from", dest="sender", required=True, help="e.g. +5511999990000")
    whatsapp.add_argument("--provider", choices=["meta", "evolution"], default="meta")
    whatsapp.add_argument("--property", help="default: make run's sample inn for the provider")
    whatsapp.add_argument("text")
    transcript = command(
        dev, "transcript", "print a guest's conversation, oldest first", run=_dev_transcript
    )
    transcript.add_argument("--from", dest="sender", required=True)
    console_session = command(
        dev,
        "console-session",
        "a console session for a staff number (prints its cookie)",
        run=_dev("dev_console_session"),
    )
    console_session.add_argument("--phone", required=True, help="e.g. +5548991234567")

    stripe_refund = command(
        dev,
        "stripe-refund",
        "refund a payment in the fake Stripe's dashboard and deliver charge.refunded",
        run=_dev("dev_stripe_refund"),
    )
    stripe_refund.add_argument("payment_id", metavar="PAYMENT_ID", help="payments.id")
    stripe_refund.add_argument("--amount", type=int, help="cents (default: what is left)")
    stripe_dispute = command(
        dev,
        "stripe-dispute",
        "dispute a payment in the fake Stripe and deliver charge.dispute.created",
        run=_dev("dev_stripe_dispute"),
    )
    stripe_dispute.add_argument("payment_id", metavar="PAYMENT_ID", help="payments.id")
    stripe_dispute.add_argument(
        "--close",
        choices=["won", "lost", "warning_closed"],
        help="decide the latest dispute instead (charge.dispute.closed)",
    )

    dev_channels = dev.add_parser("channels", help="the fake channel of make run").add_subparsers(
        dest="channels_sub", required=True
    )
    book = command(
        dev_channels,
        "book",
        "a booking on the channel: an event in its feed",
        run=_dev("dev_channel_book"),
    )
    book.add_argument("--property", required=True)
    book.add_argument("--calendar", required=True)
    book.add_argument("--checkin", type=_date, required=True)
    book.add_argument("--checkout", type=_date, required=True)
    cancel = command(
        dev_channels,
        "cancel",
        "the booking cancelled on the channel: its event removed",
        run=_dev("dev_channel_cancel"),
    )
    cancel.add_argument("--property", required=True)
    cancel.add_argument("--calendar", required=True)
    cancel.add_argument("--uid", required=True)
    command(
        dev_channels,
        "sync",
        "sync the calendars now, through the task path",
        run=_dev("dev_channels_sync"),
    ).add_argument("--property")
    return parser


def main(argv: list[str] | None = None) -> int:
    if Path(".env").is_file():
        load_dotenv(".env", override=False)  # the real environment always wins
    args = _parser().parse_args(argv)
    if args.command == "dev" and (refusal := _outside_dev()) is not None:
        print(f"hotelly: {refusal}", file=sys.stderr)
        return EXIT_CONFIG
    run_raw: Callable[[argparse.Namespace], int] | None = getattr(args, "run_raw", None)
    if run_raw is not None:
        return run_raw(args)
    env = None
    if args.command == "dev" or (args.command != "serve" and beside_make_run()):
        env = local_environment()  # the same services and database as make run
    try:
        settings = load_settings(env, require_role=getattr(args, "require_role", False))
    except ConfigError as exc:
        print(f"hotelly: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    # serve logs to stdout (Cloud Logging); other commands keep stdout for their result.
    stream = sys.stdout if args.command == "serve" else sys.stderr
    configure_logging(settings.role, settings.log_level, stream)
    if args.command != "serve":
        correlation_id.set(f"cli-{uuid.uuid4().hex}")
    try:
        return int(args.run(settings, args))
    except AppError as exc:
        emit({"error": exc.code, "message": str(exc), **exc.fields})
        return 1
    except db.UNREACHABLE:
        emit({"error": "database_unreachable", "message": "cannot connect to DATABASE_URL"})
        return 1
