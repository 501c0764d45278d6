"""The production image holds only what production runs, and that is enough to run it.

Docker is not available here, so the test reads deploy/Dockerfile the way a build would:
the stages the default (last) stage is built from, their COPY lines, and .dockerignore,
and copies exactly that tree into a temporary directory. Every production command is
started from the copy, in a production-like environment (no ENV, no .env.example), with
``-X importtime`` listing every module imported, so none of what the image leaves out can
hide in a lazy import. The locks are checked statically: what production imports is pinned
in the runtime lock, and none of the dev tools are.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from app.dev.postgres import free_port
from tests.support import ROOT, SERVE_ENV, app_env

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
WORKDIR = "/srv/hotelly"
DEV_REFUSAL = "hotelly: dev commands run only with ENV=dev (ENV is prod)"
# The packages of app/ the image leaves out: the local stack's fakes and dev commands, and the
# deploy command, which runs gcloud from an operator's checkout (and reads YAML with pyyaml,
# a dev-lock tool). Every other package must have its COPY line.
NOT_IN_IMAGE = ("dev", "deploy")


@dataclass(frozen=True)
class Stage:
    name: str
    base: str
    instructions: tuple[tuple[str, str], ...]  # (keyword in upper case, its arguments)


def _stages() -> list[Stage]:
    """deploy/Dockerfile's stages in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[Stage] = []
    name, base, instructions = "", "", []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            if base:
                stages.append(Stage(name, base, tuple(instructions)))
            words = rest.split()
            base, name, instructions = words[0], words[2] if len(words) == 3 else "", []
        else:
            instructions.append((keyword.upper(), rest.strip()))
    stages.append(Stage(name, base, tuple(instructions)))
    return stages


def _chain(target: str | None = None) -> list[Stage]:
    """The stages ``target`` (default: the last, what a plain `docker build` gives) is built
    from, base first."""
    stages = _stages()
    by_name = {stage.name: stage for stage in stages if stage.name}
    chain = [by_name[target] if target else stages[-1]]
    while chain[0].base in by_name:
        chain.insert(0, by_name[chain[0].base])
    return chain


def _ignored() -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as (excludes, regex) in order: Go's filepath.Match (``*`` stays within
    one directory), ``**`` any number of directories, a match also covering what is under
    it, ``!`` re-including; the last match wins."""
    rules = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        excludes = not line.startswith("!")
        pattern = line.lstrip("!").strip().removeprefix("./").lstrip("/")
        regex, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((excludes, re.compile(regex + r"(?:/.*)?")))
    return rules


def _in_context(path: Path, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    relative = path.relative_to(ROOT).as_posix()
    sent = True
    for excludes, regex in rules:
        if regex.fullmatch(relative):
            sent = not excludes
    return sent


def _copy_tree(target: Path, stage: str | None = None) -> Path:
    """What the COPY lines of ``stage``'s chain put under WORKDIR, copied into ``target``."""
    rules = _ignored()
    for built in _chain(stage):
        for keyword, arguments in built.instructions:
            if keyword == "WORKDIR":
                assert arguments == WORKDIR, "the tree below assumes one WORKDIR"
            if keyword != "COPY":
                continue
            *sources, dest = shlex.split(arguments)
            assert not any(s.startswith("--") for s in sources), f"unmodelled flag: {arguments}"
            assert not dest.startswith("/"), f"COPY into WORKDIR, relative: {arguments}"
            into = target / dest
            for source in sources:
                matches = sorted(p for p in ROOT.glob(source) if _in_context(p, rules))
                assert matches, f"COPY {source}: nothing in the build context"
                for found in matches:
                    if found.is_dir():
                        for file in sorted(found.rglob("*")):
                            if file.is_file() and _in_context(file, rules):
                                copied = into / file.relative_to(found)
                                copied.parent.mkdir(parents=True, exist_ok=True)
                                shutil.copy2(file, copied)
                    else:
                        copied = into / found.name if dest.endswith("/") else into
                        copied.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(found, copied)
    return target


def _python_files(root: Path) -> set[Path]:
    return {
        p.relative_to(root) for p in (root / "app").rglob("*.py") if "__pycache__" not in p.parts
    }


def _production_modules() -> set[Path]:
    return {p for p in _python_files(ROOT) if p.parts[1] not in NOT_IN_IMAGE}


def _modules_left_out() -> set[Path]:
    return _python_files(ROOT) - _production_modules()


@pytest.fixture
def image_tree(tmp_path: Path) -> Path:
    return _copy_tree(tmp_path / "image")


def test_production_tree_is_every_production_module_and_none_of_app_dev(image_tree: Path) -> None:
    """The default stage's COPY lines give every module of app/ but app/dev's and app/deploy's
    (a new package without its COPY line fails here), the migrations, queries and runbook SQL,
    and neither of those two in any layer; .dockerignore leaves app/dev in the context for
    the dev stage."""
    assert not any((image_tree / "app" / package).exists() for package in NOT_IN_IMAGE)
    assert _python_files(image_tree) == _production_modules()
    for data in ("sql", "docs/operations/sql"):
        wanted = {p.relative_to(ROOT) for p in (ROOT / data).rglob("*") if p.is_file()}
        assert wanted and wanted <= {p.relative_to(image_tree) for p in image_tree.rglob("*")}
    assert not (image_tree / "tests").exists() and not (image_tree / ".env.example").exists()
    assert _in_context(ROOT / "app" / "dev" / "__init__.py", _ignored())


def test_dev_stage_is_the_runtime_plus_app_dev(tmp_path: Path) -> None:
    """compose's `target: dev` is built on the runtime stage and adds all of app/dev; the last
    stage, what a build naming no target gives, is `production`, on the runtime too."""
    stages = _stages()
    assert stages[-1].name == "production" and stages[-1].base == "runtime"
    assert [stage.name for stage in _chain("dev")] == ["runtime", "dev"]
    dev_tree = _copy_tree(tmp_path / "dev", "dev")
    dev = {p for p in _python_files(ROOT) if p.parts[1] == "dev"}
    assert dev and _python_files(dev_tree) == _production_modules() | dev


def test_production_image_runs_python_m_app_serve_as_non_root() -> None:
    """The default stage runs as a non-root USER, with `python -m app` as its entrypoint and
    `serve` as its command, and installs the runtime lock only."""
    instructions = [i for stage in _chain() for i in stage.instructions]
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert ("ENTRYPOINT", '["python", "-m", "app"]') in instructions
    assert ("CMD", '["serve"]') in instructions
    runs = " ".join(arguments for keyword, arguments in instructions if keyword == "RUN")
    assert re.findall(r"-r\s+(\S+)", runs) == ["requirements.lock"]
    assert "requirements-dev" not in DOCKERFILE.read_text()


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr_lines: list[str]  # without importtime's lines
    imported: set[str]


def _split_importtime(stderr: str) -> tuple[list[str], set[str]]:
    lines, imported = [], set()
    for line in stderr.splitlines():
        if line.startswith("import time:"):
            imported.add(line.rsplit("|", 1)[1].strip())
        else:
            lines.append(line)
    return lines, imported


def _argv(*args: str) -> list[str]:
    return [sys.executable, "-X", "importtime", "-m", "app", *args]


def _image_env(tree: Path, **values: str) -> dict[str, str]:
    """A production-like environment: no ENV, nothing inherited, the copy first on the path
    (the venv's editable install of the repository is consulted only after it)."""
    return app_env(PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1", **values)


def _run(tree: Path, *args: str, env: dict[str, str]) -> Ran:
    result = subprocess.run(
        _argv(*args), cwd=tree, env=env, capture_output=True, text=True, timeout=60
    )
    lines, imported = _split_importtime(result.stderr)
    return Ran(result.returncode, result.stdout, lines, imported)


def _assert_only_the_image(ran: Ran) -> None:
    """Nothing the image leaves out was imported (nor attempted: a failed import is listed)."""
    assert "app.cli" in ran.imported, "importtime listed nothing: the check would be vacuous"
    left_out = {f"app.{package}" for package in NOT_IN_IMAGE}
    assert not {m for m in ran.imported if m in left_out or m.rpartition(".")[0] in left_out}


@dataclass
class Served:
    role: str
    port: int
    process: subprocess.Popen[bytes]
    stderr: Path


def _wait_healthy(served: Served, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{served.port}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if served.process.poll() is not None:
            raise AssertionError(f"{served.role} exited: {served.stderr.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{served.role}: /health not 200 within {within} s")
        time.sleep(0.05)


@pytest.fixture
def serving(image_tree: Path, tmp_path: Path) -> Iterator[list[Served]]:
    """Whatever the test serves from the copy, stopped with SIGTERM (as Cloud Run does)."""
    started: list[Served] = []
    yield started
    for served in started:
        if served.process.poll() is None:
            served.process.send_signal(signal.SIGTERM)
    for served in started:
        try:
            served.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            served.process.kill()
            served.process.wait()


def test_production_tree_starts_every_production_command(
    image_tree: Path, fresh_db_url: str, serving: list[Served], tmp_path: Path
) -> None:
    """From the copy alone, with no ENV and no .env.example: `migrate` migrates an empty
    database, `check-config` accepts the production defaults, `ops reconcile` finds nothing,
    `serve` answers /health for both roles, and `dev hold` refuses with one line; none of
    them imports a module of app.dev or app.deploy."""
    env = _image_env(image_tree, DATABASE_URL=fresh_db_url)
    where = subprocess.run(
        [sys.executable, "-c", "import app; print(app.__file__)"],
        cwd=image_tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert Path(where.stdout.strip()) == image_tree / "app" / "__init__.py", where.stderr

    migrated = _run(image_tree, "migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr_lines
    assert orjson.loads(migrated.stdout.splitlines()[-1])["applied"]
    _assert_only_the_image(migrated)

    for role in ("public", "worker"):
        port = free_port()
        stderr = tmp_path / f"{role}.stderr"
        with stderr.open("wb") as sink:
            process = subprocess.Popen(
                _argv("serve"),
                cwd=image_tree,
                env={**env, **SERVE_ENV, "ROLE": role, "PORT": str(port), "HOST": "127.0.0.1"},
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )
        serving.append(Served(role, port, process, stderr))

    checked = _run(image_tree, "check-config", env=env)
    assert checked.returncode == 0, checked.stderr_lines
    assert "env='prod'" in checked.stdout
    _assert_only_the_image(checked)

    reconciled = _run(image_tree, "ops", "reconcile", env=env)
    assert reconciled.returncode == 0, reconciled.stderr_lines
    assert orjson.loads(reconciled.stdout.splitlines()[-1]) == {"check": "reconcile", "found": 0}
    _assert_only_the_image(reconciled)

    refused = _run(
        image_tree,
        "dev",
        "hold",
        "--property",
        "pousada-mare-alta",
        "--room-type",
        "standard",
        "--checkin",
        "2027-01-10",
        "--checkout",
        "2027-01-12",
        env=env,
    )
    assert (refused.returncode, refused.stdout, refused.stderr_lines) == (2, "", [DEV_REFUSAL])
    _assert_only_the_image(refused)

    for served in serving:
        _wait_healthy(served)
    for served in serving:
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=15) == 0
        lines, imported = _split_importtime(served.stderr.read_text())
        _assert_only_the_image(Ran(0, "", lines, imported))
        assert "app.http.app" in imported


def _lock(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", "-r ")):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


@functools.cache
def _modules_of_distributions() -> dict[str, str]:
    """Each importable module's dotted name -> the installed distribution that ships it (from
    the RECORD files: far quicker than ``Distribution.files``)."""
    owners: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        for line in (dist.read_text("RECORD") or "").splitlines():
            parts = line.split(",", 1)[0].split("/")
            if parts[0].endswith((".dist-info", ".data")) or ".." in parts:
                continue
            stem = parts[-1].split(".", 1)[0]
            owners.setdefault(
                ".".join([*parts[:-1], stem] if stem != "__init__" else parts[:-1]), name
            )
    return owners


def _third_party_imports(files: set[Path]) -> set[str]:
    modules = set()
    for relative in files:
        for node in ast.walk(ast.parse((ROOT / relative).read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module)
    return {m for m in modules if m.split(".")[0] not in (*sys.stdlib_module_names, "app")}


def _unpinned(files: set[Path], pins: dict[str, str]) -> dict[str, str | None]:
    """The third-party modules ``files`` import whose distribution ``pins`` lacks."""
    owners = _modules_of_distributions()
    unpinned = {}
    for module in sorted(_third_party_imports(files)):
        parts = module.split(".")
        prefixes = (".".join(parts[:n]) for n in range(len(parts), 0, -1))
        owner = next((owners[prefix] for prefix in prefixes if prefix in owners), None)
        if owner not in pins:
            unpinned[module] = owner
    return unpinned


def _project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def test_runtime_lock_is_exactly_what_production_needs() -> None:
    """Every third-party module the image's code imports comes from a distribution pinned in
    requirements.lock, and the lock is pyproject's dependencies closed over their own
    requirements (extras included) at the versions installed here: nothing missing, nothing
    more."""
    runtime = _lock(ROOT / "requirements.lock")
    unpinned = _unpinned(_production_modules(), runtime)
    assert not unpinned, f"imported by production code, not in requirements.lock: {unpinned}"
    needed = [Requirement(r) for r in _project()["dependencies"]]
    reached: set[tuple[str, str]] = set()
    while needed:
        requirement = needed.pop()
        name = canonicalize_name(requirement.name)
        assert name in runtime, f"{name} is required at run time but not pinned"
        assert importlib.metadata.version(name) == runtime[name], f"{name}: not the pinned version"
        for extra in ("", *sorted(requirement.extras)):
            if (name, extra) not in reached:
                reached.add((name, extra))
                needed += [
                    r
                    for r in map(Requirement, importlib.metadata.requires(name) or ())
                    if r.marker is None or r.marker.evaluate({"extra": extra})
                ]
    assert {name for name, _ in reached} == set(runtime), "pinned but not required at run time"


def test_dev_tools_are_in_the_dev_lock_only() -> None:
    """No tool of pyproject's dev extra (pytest, hypothesis, ruff, mypy, pyyaml, vobject,
    jsonschema, …) is in requirements.lock; requirements-dev.lock includes the runtime lock
    and pins them all, and what app/dev and app/deploy import."""
    runtime = _lock(ROOT / "requirements.lock")
    dev_lock = ROOT / "requirements-dev.lock"
    dev = _lock(dev_lock)
    tools = {
        canonicalize_name(Requirement(r).name) for r in _project()["optional-dependencies"]["dev"]
    }
    assert {"pytest", "hypothesis", "ruff", "mypy", "pyyaml", "vobject", "jsonschema"} <= tools
    assert not tools & set(runtime)
    assert "-r requirements.lock" in dev_lock.read_text().splitlines()
    assert tools <= set(dev)
    unpinned = _unpinned(_modules_left_out(), {**runtime, **dev})
    assert not unpinned, f"imported by app/dev or app/deploy, not in either lock: {unpinned}"


def test_make_install_uses_the_dev_lock() -> None:
    """`make install` installs requirements-dev.lock (and reinstalls when either lock
    changes): the venv has the tests' and linters' tools, the image does not."""
    makefile = (ROOT / "Makefile").read_text()
    target = re.search(r"^\$\(VENV\)/\.installed:(.*)$", makefile, re.MULTILINE)
    assert target and {"requirements.lock", "requirements-dev.lock"} <= set(target[1].split())
    assert "pip install -q -r requirements-dev.lock" in makefile
