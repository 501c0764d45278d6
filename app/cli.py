"""The command line: ``python -m app <command>`` (also installed as ``hotelly``).

A configuration problem prints one line naming the variable and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
from dotenv import load_dotenv

from app.logging import configure_logging
from app.settings import ConfigError, Settings, load_settings

EXIT_CONFIG = 2


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from app.serve import serve

    serve(settings)
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from app.migrate import migrate

    applied = migrate(settings.database_url.reveal())
    print(orjson.dumps({"applied": applied}).decode())
    return 0


def _check_config(settings: Settings, args: argparse.Namespace) -> int:
    print(orjson.dumps(repr(settings)).decode())
    return 0


def _dev_up(args: argparse.Namespace) -> int:
    from app.dev.stack import run_stack

    return run_stack()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotelly", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the app for ROLE on PORT").set_defaults(
        run=_serve, require_role=True
    )
    commands.add_parser("migrate", help="apply sql/migrations (safe to repeat)").set_defaults(
        run=_migrate
    )
    commands.add_parser("check-config", help="validate the environment").set_defaults(
        run=_check_config
    )
    dev = commands.add_parser("dev", help="local development commands")
    dev_commands = dev.add_subparsers(dest="dev_command", required=True)
    dev_commands.add_parser(
        "up", help="the whole system on this machine (what `make run` runs)"
    ).set_defaults(run_raw=_dev_up)
    return parser


def main(argv: list[str] | None = None) -> int:
    if Path(".env").is_file():
        load_dotenv(".env", override=False)  # the real environment always wins
    args = _parser().parse_args(argv)
    run_raw: Callable[[argparse.Namespace], int] | None = getattr(args, "run_raw", None)
    if run_raw is not None:
        return run_raw(args)
    try:
        settings = load_settings(require_role=getattr(args, "require_role", False))
    except ConfigError as exc:
        print(f"hotelly: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    # serve logs to stdout (Cloud Logging); other commands keep stdout for their result.
    stream = sys.stdout if args.command == "serve" else sys.stderr
    configure_logging(settings.role, settings.log_level, stream)
    return int(args.run(settings, args))
