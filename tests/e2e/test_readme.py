"""The README's walk-through, run verbatim against `make run` with no configuration.

The shell blocks under "With `make run` up" and the WhatsApp booking block are read from
README.md itself, so the README cannot drift from what the commands do. A reader changes
only what the README asks them to: the dates (to ones ahead of today, kept as the README
writes them) and ``<hold_id>`` (from the previous command's output). Each command must exit
0 and print a JSON object last; where its comment shows that object, it must match.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import orjson

from tests.e2e.test_make_run import dev_up, ports_env
from tests.support import ROOT, app_env, eventually, run_cli, sample_stay

MONTHS_PT = [
    "janeiro",
    "fevereiro",
    "março",
    "abril",
    "maio",
    "junho",
    "julho",
    "agosto",
    "setembro",
    "outubro",
    "novembro",
    "dezembro",
]


def _block_after(readme: str, marker: str) -> str:
    start = readme.index(marker)
    match = re.search(r"```sh\n(.*?)```", readme[start:], re.S)
    assert match is not None, f"no shell block after {marker!r}"
    return match.group(1)


def _commands(block: str) -> list[tuple[list[str], str]]:
    """Each command of a block (continuations joined) with the comment that follows it."""
    joined = re.sub(r"\\\n\s*", " ", block)
    found = []
    for line in joined.splitlines():
        if not line.strip():
            continue
        tail = line.rsplit('"', 1)[-1]  # a comment follows the last quoted argument
        comment = tail.split("#", 1)[1].strip() if "#" in tail else ""
        found.append((shlex.split(line, comments=True), comment))
    return found


def _last_json(stdout: str) -> dict[str, object]:
    lines = stdout.strip().splitlines()
    assert lines, "the command printed nothing"
    value = orjson.loads(lines[-1])
    assert isinstance(value, dict), lines[-1]
    return value


def _check_comment(result: dict[str, object], comment: str) -> None:
    """A comment showing a JSON object states the result: whole, or keys only (with …)."""
    shown = re.search(r"\{.*\}", comment)
    if shown is None:
        return
    if "…" in shown.group(0):
        keys = re.findall(r'"(\w+)":', shown.group(0))
        assert all(key in result for key in keys), (comment, result)
    else:
        assert result == orjson.loads(shown.group(0)), (comment, result)


@contextlib.contextmanager
def _make_run_without_configuration() -> Iterator[dict[str, str]]:
    """`make run` on free ports with no DATABASE_URL: it starts its own Postgres in a local
    directory of the test's own (reachable by the unprivileged server user)."""
    local = Path(tempfile.mkdtemp(prefix="hotelly-readme-"))
    local.chmod(0o755)
    env = ports_env(HOTELLY_LOCAL_DIR=str(local))
    try:
        with dev_up(env, local / "stack.log"):
            yield env
    finally:
        shutil.rmtree(local, ignore_errors=True)


def _run(env: dict[str, str], argv: list[str]) -> subprocess.CompletedProcess[str]:
    assert argv[:3] == ["python", "-m", "app"], argv
    result = run_cli(*argv[3:], env=env)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def _transcript_until(env: dict[str, str], argv: list[str], outbound: int) -> str:
    """A reader waits a moment for the replies: poll until ``outbound`` have arrived."""

    async def arrived() -> str:
        result = await asyncio.to_thread(_run, env, argv)
        assert result.returncode == 0, result.stderr
        return result.stdout if int(_last_json(result.stdout)["outbound"]) >= outbound else ""

    return asyncio.run(eventually(arrived, within=30, interval=0.3))


def test_the_readme_walk_through_works_as_written() -> None:
    """Every command of the README's two walk-throughs, beside `make run`, exits 0 and
    prints the JSON the README shows; the WhatsApp guest ends with a confirmation code."""
    readme = (ROOT / "README.md").read_text()
    direct = _commands(_block_after(readme, "With `make run` up"))
    whatsapp = _commands(_block_after(readme, "Or book as a guest would, on WhatsApp"))
    checkin, checkout = sample_stay(2)

    with _make_run_without_configuration() as env:
        hold_id = ""
        for argv, comment in direct:
            argv = [
                {"<hold_id>": hold_id}.get(arg, arg)
                for arg in _replace_iso_dates(argv, checkin, checkout)
            ]
            result = _run(env, argv)
            assert result.returncode == 0, (argv, result.stdout, result.stderr)
            output = _last_json(result.stdout)
            _check_comment(output, comment)
            hold_id = str(output.get("hold_id", hold_id))
        assert hold_id

        sent = paid = 0
        transcript = ""
        for argv, comment in whatsapp:
            if argv[3:5] == ["dev", "transcript"]:
                transcript = _transcript_until(env, argv, sent + paid)
                continue
            if argv[3:5] == ["dev", "pay"]:
                session = re.search(r"cs_\w+", transcript)
                assert session is not None, transcript
                argv = [session.group(0) if arg == "<hold_id>" else arg for arg in argv]
                paid += 1
            else:
                argv = [_reword_dates(arg, checkin, checkout) for arg in argv]
                sent += 1
            result = _run(env, argv)
            assert result.returncode == 0, (argv, result.stdout, result.stderr)
            _check_comment(_last_json(result.stdout), comment)
        assert re.search(r"Código: [A-Z2-9]{6}", transcript), transcript

        reconcile = _run(env, ["python", "-m", "app", "ops", "reconcile"])
        assert _last_json(reconcile.stdout) == {"check": "reconcile", "found": 0}


def _replace_iso_dates(argv: list[str], checkin: dt.date, checkout: dt.date) -> list[str]:
    """The README's check-in and check-out (YYYY-MM-DD) become dates ahead of today."""
    replaced = []
    for arg, previous in zip(argv, ["", *argv], strict=False):
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", arg):
            arg = (checkin if previous == "--checkin" else checkout).isoformat()
        replaced.append(arg)
    return replaced


def _reword_dates(text: str, checkin: dt.date, checkout: dt.date) -> str:
    """ "de 10 a 12 de janeiro" becomes the same phrase for dates ahead of today."""
    month = MONTHS_PT[checkin.month - 1]
    if checkout.month != checkin.month:
        phrase = f"{checkin.day} de {month} a {checkout.day} de {MONTHS_PT[checkout.month - 1]}"
    else:
        phrase = f"{checkin.day} a {checkout.day} de {month}"
    return re.sub(rf"\d{{1,2}} a \d{{1,2}} de (?:{'|'.join(MONTHS_PT)})", phrase, text)


def test_ops_commands_find_make_runs_database(db_url: str, tmp_path: Path) -> None:
    """With no DATABASE_URL and a make run up (its database URL left in the local
    directory), `ops reconcile` uses that database; a DATABASE_URL set still wins."""
    (tmp_path / "database_url").write_text(db_url + "\n")
    env = app_env(HOTELLY_LOCAL_DIR=str(tmp_path))
    result = run_cli("ops", "reconcile", env=env)
    assert result.returncode == 0, result.stderr
    assert _last_json(result.stdout) == {"check": "reconcile", "found": 0}

    elsewhere = "postgresql://nobody@127.0.0.1:9/none"
    result = run_cli("ops", "reconcile", env={**env, "DATABASE_URL": elsewhere})
    assert result.returncode == 1
    assert _last_json(result.stdout)["error"] == "database_unreachable"

    (tmp_path / "database_url").unlink()
    result = run_cli("ops", "reconcile", env=env)
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr
