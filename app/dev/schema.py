"""The schema snapshot: ``python -m app.dev.schema`` prints the migrated schema.

``make schema`` writes it to sql/schema.sql; a test proves the migrations still
reproduce the committed file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from app.dev.postgres import bin_dir, start_postgres
from app.migrate import migrate

# Lines that vary between runs or pg_dump versions and say nothing about the schema.
_NOISE = ("--", "SET ", "SELECT pg_catalog.set_config", "\\restrict", "\\unrestrict")


def dump_schema(database_url: str) -> str:
    dump = subprocess.run(
        [
            str(bin_dir() / "pg_dump"),
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--exclude-table=_yoyo*",
            "--exclude-table=yoyo_lock",
            database_url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = [line.rstrip() for line in dump.splitlines() if not line.startswith(_NOISE)]
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip() + "\n"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # noqa: S103 - the server runs unprivileged and must reach it
        server = start_postgres(Path(tmp) / "pg", durable=False)
        try:
            url = server.url("schema")
            migrate(url)
            sys.stdout.write(dump_schema(url))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
