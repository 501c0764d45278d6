"""The runbook names only commands that exist, with flags they take."""

from __future__ import annotations

import re
import shlex

import pytest

from app.cli import _parser
from tests.support import ROOT

RUNBOOK = ROOT / "docs" / "operations" / "runbook.md"
# A command as the runbook writes it: in a code block, or in `backticks` in the text.
_COMMAND = re.compile(r"(?:python -m app )?(ops [a-z-]+(?: [^`\n#|]*)?)")
_SECTIONS = ("§4", "§5", "§7.1", "§7.2", "§7.3", "§7.4", "§7.5", "§7.6", "§7.7", "§8", "§9")


def _commands() -> list[str]:
    text = RUNBOOK.read_text()
    spans = re.findall(r"`([^`\n]+)`", text) + re.findall(r"^python -m app (.+)$", text, re.M)
    found = []
    for span in spans:
        # "stripe\|whatsapp" and "[--apply]" are the table's ways to write alternatives.
        span = span.replace("stripe\\|whatsapp", "stripe").replace("[", "").replace("]", "")
        for match in _COMMAND.finditer(span):
            found.append(match.group(1).split("#")[0].strip())
    return sorted(set(found))


def test_every_playbook_section_is_there() -> None:
    text = RUNBOOK.read_text()
    for section in _SECTIONS:
        assert section in text, section


@pytest.mark.parametrize("command", _commands())
def test_every_command_the_runbook_names_parses(command: str) -> None:
    """Placeholders (P, PAYMENT_ID, ID, 3d) stand for values; the words and flags must be
    the CLI's own."""
    argv = [
        {"P": "pousada", "PAYMENT_ID": "00000000-0000-0000-0000-000000000000", "ID": "1"}.get(
            word, word
        )
        for word in shlex.split(command)
    ]
    args = _parser().parse_args(argv)
    assert args.command == "ops"
