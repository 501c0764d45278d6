"""A fake ``gcloud`` for the deploy's tests, installed first on PATH by ``install``.

Each call is recorded (argv and exit code) in a JSON state file that also keeps what the
calls created. It answers as gcloud does where the deploy relies on it: a second create of
the same resource fails with ALREADY_EXISTS on stderr (exit 1); describe and list answer
from the state (NOT_FOUND, exit 1, for what is not there); ``projects describe`` prints a
project number; deploy, update, add-iam-policy-binding, enable and execute are idempotent
upserts of what their flags say. A command it does not know is an error (exit 2), so a
misspelt command in the plan fails the tests, and so is one without --project or --quiet
(gcloud would prompt). The script imports little (it runs as ``python -I -S`` for each of
the deploy's ~80 calls; pathlib and dataclasses alone would double its start-up).
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

PROJECT_NUMBER = "123456789012"
# Flags that change how gcloud talks, not what the resource is.
_NOT_STATE = {"project", "quiet", "format", "wait"}


class FakeGcloud:
    def __init__(self, bin_dir: Path, state_file: Path) -> None:
        self.bin_dir = bin_dir
        self.state_file = state_file

    def state(self) -> dict:  # type: ignore[type-arg]
        return json.loads(self.state_file.read_text())

    def calls(self) -> list[list[str]]:
        return [call["argv"] for call in self.state()["calls"]]

    def resources(self) -> dict:  # type: ignore[type-arg]
        return self.state()["resources"]

    def add_secret(self, name: str) -> None:
        state = self.state()
        state["resources"][f"secret/{name}"] = {"state": "ENABLED"}
        self.state_file.write_text(json.dumps(state))

    def fail(self, command: str) -> None:
        """Make every call starting with these words fail as a permission error would."""
        state = self.state()
        state["fail"].append(command)
        self.state_file.write_text(json.dumps(state))


def install(directory: Path) -> FakeGcloud:
    """A ``gcloud`` executable in ``directory/bin`` with an empty project as its state."""
    bin_dir = directory / "bin"
    bin_dir.mkdir()
    state_file = directory / "gcloud-state.json"
    state_file.write_text(json.dumps({"calls": [], "resources": {}, "fail": []}))
    shim = bin_dir / "gcloud"
    shim.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" -I -S "{os.path.abspath(__file__)}" '
        f'"{state_file}" "$@"\n'
    )
    shim.chmod(0o755)
    return FakeGcloud(bin_dir, state_file)


class Answer(Exception):
    def __init__(self, code: int, out: str = "", err: str = "") -> None:
        self.code, self.out, self.err = code, out, err


def _not_found(what: str) -> Answer:
    return Answer(1, err=f"ERROR: (gcloud) NOT_FOUND: {what} not found\n")


class Project:
    def __init__(self, resources: dict, words: list[str], flags: dict[str, str]) -> None:  # type: ignore[type-arg]
        self.resources = resources
        self.words = words
        self.flags = flags

    def record(self) -> dict[str, str]:
        return {k: v for k, v in self.flags.items() if k not in _NOT_STATE}

    def need(self, key: str) -> None:
        if key not in self.resources:
            raise _not_found(key)

    def create(self, key: str) -> Answer:
        if key in self.resources:
            raise Answer(
                1, err=f"ERROR: (gcloud) ALREADY_EXISTS: Resource '{key}' already exists\n"
            )
        self.resources[key] = self.record()
        return Answer(0, err=f"Created [{key}].\n")

    def update(self, key: str, renamed: dict[str, str] | None = None) -> Answer:
        """Flags not given keep their values; ``renamed``: an update flag's create flag."""
        self.need(key)
        changes = {(renamed or {}).get(k, k): v for k, v in self.record().items()}
        self.resources[key] = {**self.resources[key], **changes}
        return Answer(0, err=f"Updated [{key}].\n")

    def upsert(self, key: str) -> Answer:
        self.resources[key] = self.record()
        return Answer(0)

    def secrets_of(self) -> list[str]:
        value = self.flags.get("set-secrets", "")
        return [item.split("=", 1)[1].split(":", 1)[0] for item in value.split(",") if item]

    def generated(self, prefix: str, kind: str) -> str:
        """A new resource name, as the API assigns it (e.g. projects/P/alertPolicies/3)."""
        count = sum(1 for key in self.resources if key.startswith(f"{prefix}/"))
        return f"projects/{self.flags['project']}/{kind}/{count + 1}"


def handle(project: Project) -> Answer:
    w, f = project.words, project.flags
    if "project" not in f or "quiet" not in f:
        return Answer(2, err="ERROR: the deploy always names --project and never prompts\n")
    match w:
        case ["services", "enable", *apis]:
            for api in apis:
                project.resources[f"api/{api}"] = {}
            return Answer(0)
        case ["projects", "describe", _]:
            return Answer(0, out=f"{PROJECT_NUMBER}\n")
        case ["projects", "add-iam-policy-binding", name]:
            return project.upsert(f"binding/project/{name}/{f['member']}/{f['role']}")
        case ["artifacts", "repositories", "create", name]:
            return project.create(f"repository/{f['location']}/{name}")
        case ["artifacts", "docker", "images", "describe", image]:
            project.need(f"image/{image}")
            return Answer(0, out="sha256:0f0f\n")
        case ["builds", "submit", "."]:
            image = f["substitutions"].removeprefix("_IMAGE=")
            if not os.path.isfile(f["config"]):
                return Answer(1, err=f"ERROR: no such file {f['config']}\n")
            return project.upsert(f"image/{image}")
        case ["iam", "service-accounts", "create", name]:
            return project.create(f"account/{name}@{f['project']}.iam.gserviceaccount.com")
        case ["iam", "service-accounts", "add-iam-policy-binding", email]:
            project.need(f"account/{email}")
            return project.upsert(f"binding/account/{email}/{f['member']}/{f['role']}")
        case ["sql", "instances", "create", name]:
            return project.create(f"sql/{name}")
        case ["sql", "databases", "create", name]:
            project.need(f"sql/{f['instance']}")
            return project.create(f"sql/{f['instance']}/{name}")
        case ["secrets", "versions", "describe", "latest"]:
            project.need(f"secret/{f['secret']}")
            return Answer(0, out=project.resources[f"secret/{f['secret']}"]["state"] + "\n")
        case ["secrets", "add-iam-policy-binding", name]:
            project.need(f"secret/{name}")
            return project.upsert(f"binding/secret/{name}/{f['member']}/{f['role']}")
        case ["run", "jobs", "deploy", name] | ["run", "deploy", name]:
            project.need(f"image/{f['image']}")
            project.need(f"account/{f['service-account']}")
            for secret in project.secrets_of():
                project.need(f"secret/{secret}")
            kind = "job" if w[1] == "jobs" else "service"
            return project.upsert(f"run/{f['region']}/{kind}/{name}")
        case ["run", "jobs", "execute", name]:
            project.need(f"run/{f['region']}/job/{name}")
            return Answer(0)
        case ["run", "services", "add-iam-policy-binding", name]:
            project.need(f"run/{f['region']}/service/{name}")
            return project.upsert(f"binding/run/{name}/{f['member']}/{f['role']}")
        case ["tasks", "queues", ("create" | "update") as verb, name]:
            key = f"queue/{f['location']}/{name}"
            return project.create(key) if verb == "create" else project.update(key)
        case ["scheduler", "jobs", ("create" | "update") as verb, "http", name]:
            key = f"scheduler/{f['location']}/{name}"
            if verb == "create":
                return project.create(key)
            return project.update(key, renamed={"update-headers": "headers"})
        case ["logging", "metrics", ("create" | "update") as verb, name]:
            if not os.path.isfile(f["config-from-file"]):
                return Answer(1, err=f"ERROR: no such file {f['config-from-file']}\n")
            key = f"metric/{name}"
            return project.create(key) if verb == "create" else project.update(key)
        case ["monitoring", "channels", "list"]:
            email = re.search(r'labels\.email_address="([^"]*)"', f["filter"])
            names = [
                key.removeprefix("channel/")
                for key, value in project.resources.items()
                if key.startswith("channel/") and email and value["email"] == email[1]
            ]
            return Answer(0, out="".join(f"{name}\n" for name in names))
        case ["monitoring", "channels", "create"]:
            name = project.generated("channel", "notificationChannels")
            email = f["channel-labels"].removeprefix("email_address=")
            project.resources[f"channel/{name}"] = {"email": email, **project.record()}
            return Answer(0, out=f"{name}\n")
        case ["monitoring", "policies", "list"]:
            wanted = re.fullmatch(r'displayName="([^"]*)"', f["filter"])
            names = [
                key.removeprefix("policy/")
                for key, value in project.resources.items()
                if key.startswith("policy/") and wanted and value["displayName"] == wanted[1]
            ]
            return Answer(0, out="".join(f"{name}\n" for name in names))
        case ["monitoring", "policies", "create"]:
            name = project.generated("policy", "alertPolicies")
            project.resources[f"policy/{name}"] = _policy(project)
            return Answer(0, err=f"Created alert policy [{name}].\n")
        case ["monitoring", "policies", "update", name]:
            project.need(f"policy/{name}")
            project.resources[f"policy/{name}"] = _policy(project)
            return Answer(0)
    return Answer(2, err=f"ERROR: the fake gcloud does not know: {' '.join(w)}\n")


def _policy(project: Project) -> dict[str, str]:
    with open(project.flags["policy-from-file"]) as file:
        text = file.read()
    found = re.search(r"^displayName:\s*[\"']?(.*?)[\"']?\s*$", text, re.MULTILINE)
    channels = project.flags.get("notification-channels") or project.flags.get(
        "set-notification-channels", ""
    )
    return {"displayName": found[1] if found else "", "channels": channels}


def main(state_file: str, argv: list[str]) -> int:
    with open(state_file) as file:
        state = json.load(file)
    words = [a for a in argv if not a.startswith("--")]
    if words and words[0] in ("alpha", "beta"):
        words = words[1:]
    flags = dict(
        (a[2:].split("=", 1) if "=" in a else (a[2:], "")) for a in argv if a.startswith("--")
    )
    failing = next((c for c in state["fail"] if " ".join(words).startswith(c)), None)
    try:
        if failing:
            raise Answer(
                1, err=f"ERROR: (gcloud) PERMISSION_DENIED: the caller may not {failing}\n"
            )
        answer = handle(Project(state["resources"], words, flags))
    except Answer as raised:
        answer = raised
    except KeyError as missing:
        answer = Answer(2, err=f"ERROR: the deploy did not give --{missing.args[0]}\n")
    state["calls"].append({"argv": argv, "exit": answer.code})
    with open(state_file, "w") as file:
        json.dump(state, file)
    sys.stdout.write(answer.out)
    sys.stderr.write(answer.err)
    return answer.code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2:]))
