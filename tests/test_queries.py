"""Named SQL: every block loads once under a unique name; no SQL is built by formatting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.db import QUERIES, load_queries
from tests.support import ROOT


def test_named_queries_load(tmp_path: Path) -> None:
    """Blocks split on `-- name --` headers, bodies trimmed; a duplicate name is refused."""
    assert (
        QUERIES["ready_check"]
        == "-- The cheapest round trip that proves the database answers.\nSELECT 1"
    )
    (tmp_path / "a.sql").write_text("-- one --\nSELECT 1;\n-- two --\nSELECT 2;\n")
    (tmp_path / "b.sql").write_text("-- two --\nSELECT 3;\n")
    with pytest.raises(ValueError, match="two"):
        load_queries(tmp_path)


def test_no_sql_is_built_with_string_formatting() -> None:
    """No execute/fetch call in app/ takes an f-string or %-formatted SQL text."""
    pattern = re.compile(r"\.(execute|executemany|fetch|fetchrow|fetchval)\(\s*f[\"']|%\s*\(")
    for path in (ROOT / "app").rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not pattern.search(line), f"{path}:{number}: {line}"
