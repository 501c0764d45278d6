"""What `make run` leaves behind while it runs, so commands beside it need no configuration.

`make run` writes the URL of the database it uses to ``<local dir>/database_url`` and
removes it when it stops. A command run in another terminal with no ``DATABASE_URL``
then takes make run's environment: .env.example's values, that database, and the real
environment on top (which always wins). The local directory is ``.local/`` at the
repository's root, or ``HOTELLY_LOCAL_DIR`` (so a test can run a stack of its own).

Not under ``app/dev``: the production CLI reads this too, and never imports the dev stack.
"""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parents[1]


def local_dir() -> Path:
    return Path(os.environ.get("HOTELLY_LOCAL_DIR") or ROOT / ".local")


def database_url_file() -> Path:
    return local_dir() / "database_url"


def make_run_database() -> str | None:
    """The URL of the database a running `make run` uses, if one runs."""
    try:
        return database_url_file().read_text().strip() or None
    except OSError:
        return None


def local_environment() -> dict[str, str]:
    """The environment of make run and of the commands beside it: .env.example's values,
    the database make run uses (if it runs), then the real environment on top."""
    defaults = {k: v for k, v in dotenv_values(ROOT / ".env.example").items() if v is not None}
    defaults.pop("DATABASE_URL", None)  # unset means: make run starts its own Postgres
    running = make_run_database()
    if running is not None:
        defaults["DATABASE_URL"] = running
    return {**defaults, **os.environ}


def beside_make_run() -> bool:
    """No database configured, and a `make run` is up: use its environment."""
    return not os.environ.get("DATABASE_URL", "").strip() and make_run_database() is not None
