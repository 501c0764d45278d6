"""`deploy apply`: a plan's steps run with gcloud from PATH, each printed before it runs.

A create that gcloud answers "already exists" runs its step's update, or keeps the
resource; a look-up that prints a name means the resource exists. The secret checks all
run, then apply stops before anything mounts a secret, naming each missing one with the
command that creates it. Any other failure stops apply with the command and the last
lines gcloud wrote on stderr. No secret value ever passes through here: the operator
creates them from their own shell, and only their names appear on a command line.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections import Counter
from pathlib import Path
from typing import TextIO

from app.deploy.cloudrun import PLACEHOLDER, fill
from app.deploy.plan import FOUND, ROOT, Plan, Step, secret_create_command

# How gcloud says a create found its resource, and a describe or list found none.
ALREADY_EXISTS = re.compile(r"ALREADY_EXISTS|already exists", re.IGNORECASE)
NOT_FOUND = re.compile(r"NOT_FOUND|not found|does not exist", re.IGNORECASE)
STDERR_LINES = 15


class StepFailed(Exception):
    def __init__(self, argv: tuple[str, ...], returncode: int, stderr: str) -> None:
        super().__init__(shlex.join(argv))
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr

    @classmethod
    def of(cls, argv: tuple[str, ...], result: subprocess.CompletedProcess[str]) -> StepFailed:
        return cls(argv, result.returncode, result.stderr)


class _Run:
    def __init__(self, plan: Plan, root: Path, out: TextIO) -> None:
        self.plan = plan
        self.root = root
        self.out = out
        self.values: dict[str, str] = {}
        self.counts: Counter[str] = Counter()

    def gcloud(self, argv: tuple[str, ...], **extra: str) -> subprocess.CompletedProcess[str]:
        argv = self.resolved(argv, extra)
        print(shlex.join(argv), file=self.out, flush=True)
        return subprocess.run(
            argv, cwd=self.root, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )

    def resolved(self, argv: tuple[str, ...], extra: dict[str, str]) -> tuple[str, ...]:
        known = {**self.values, **extra}

        def value(match: re.Match[str]) -> str:
            if match[1] not in known:
                raise LookupError(f"${{{match[1]}}} is not known when this step runs")
            return known[match[1]]

        return tuple(PLACEHOLDER.sub(value, token) for token in argv)

    def checked(self, argv: tuple[str, ...], **extra: str) -> str:
        result = self.gcloud(argv, **extra)
        if result.returncode != 0:
            raise StepFailed.of(self.resolved(argv, extra), result)
        return result.stdout

    def define(self, step: Step, output: str) -> None:
        assert step.defines is not None
        if not output.strip():
            raise StepFailed(
                step.command, 0, f"it printed nothing, and ${{{step.defines}}} is needed"
            )
        self.values[step.defines] = output.strip().splitlines()[0]
        for derived, template in self.plan.derived.items():
            needs = set(PLACEHOLDER.findall(template))
            if derived not in self.values and needs <= self.values.keys():
                self.values[derived] = fill(template, self.values)

    def note(self, text: str) -> None:
        print(f"#   {text}", file=self.out, flush=True)

    def create(self, step: Step) -> str:
        """Creates the resource, or updates or keeps it; the output that names it."""
        if step.lookup is not None:
            result = self.gcloud(step.lookup)
            if result.returncode != 0 and not NOT_FOUND.search(result.stderr):
                raise StepFailed.of(step.lookup, result)
            found = result.stdout.strip().splitlines()[0] if result.stdout.strip() else ""
            if result.returncode == 0 and found:
                return self.existing(step, found)
            output = self.checked(step.command)
            self.counts["created"] += 1
            return output
        result = self.gcloud(step.command)
        if result.returncode == 0:
            self.counts["created"] += 1
            return result.stdout
        if not ALREADY_EXISTS.search(result.stderr):
            raise StepFailed.of(step.command, result)
        return self.existing(step, "")

    def existing(self, step: Step, found: str) -> str:
        if step.update is None:
            self.note("already exists: kept")
            self.counts["kept"] += 1
            return found
        self.note("already exists: updating")
        self.counts["updated"] += 1
        self.checked(step.update, **{FOUND: found})
        return found

    def secret_missing(self, step: Step) -> bool:
        result = self.gcloud(step.command)
        if result.returncode == 0 and result.stdout.strip() == "ENABLED":
            return False
        if result.returncode != 0 and not NOT_FOUND.search(result.stderr):
            raise StepFailed.of(step.command, result)
        self.note("no enabled version")
        return True


def apply(plan: Plan, out: TextIO, err: TextIO, root: Path = ROOT) -> int:
    """Run every step; 0 when all are done, 1 when one failed or secrets are missing."""
    run = _Run(plan, root, out)
    missing: list[str] = []
    try:
        for step in plan.steps:
            if missing and step.kind != "secret":
                return _report_missing(plan, missing, out)
            if step.kind == "secret":
                assert step.secret is not None
                if run.secret_missing(step):
                    missing.append(step.secret)
                continue
            if step.kind == "create":
                output = run.create(step)
            else:
                output = run.checked(step.command)
                run.counts["ran"] += 1
            if step.defines:
                run.define(step, output)
    except StepFailed as failed:
        return _report_failure(failed, out, err)
    except FileNotFoundError:
        print("hotelly: deploy: gcloud is not on PATH (https://cloud.google.com/sdk)", file=err)
        _emit(out, {"error": "gcloud_not_found"})
        return 1
    if missing:
        return _report_missing(plan, missing, out)
    _emit(out, {"steps": len(plan.steps), **dict(run.counts)})
    return 0


def _report_failure(failed: StepFailed, out: TextIO, err: TextIO) -> int:
    tail = failed.stderr.strip().splitlines()[-STDERR_LINES:]
    print(f"hotelly: deploy: this failed (exit {failed.returncode}):", file=err)
    print(f"  {shlex.join(failed.argv)}", file=err)
    for line in tail:
        print(f"  | {line}", file=err)
    _emit(out, {"error": "step_failed", "command": shlex.join(failed.argv)})
    return 1


def _report_missing(plan: Plan, missing: list[str], out: TextIO) -> int:
    print(
        "# These secrets have no enabled version. Create each with its value from your shell "
        "(never from a file in the repository; docs/deploy.md says what each holds), then "
        "run apply again:",
        file=out,
    )
    for secret in missing:
        print(secret_create_command(secret, plan.options.project), file=out)
    _emit(out, {"error": "secrets_missing", "missing": missing})
    return 1


def _emit(out: TextIO, value: dict[str, object]) -> None:
    print(json.dumps(value), file=out, flush=True)
