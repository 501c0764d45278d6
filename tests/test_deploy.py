"""`deploy plan` agrees with what the code declares: the route tables, the task catalog's
queues and scheduled kinds, the settings each role requires, the worker's token check; and
deploy/cloudrun/*.yaml, the one record of how each workload runs, holds what each needs.
(apply against a fake gcloud: tests/deploy/test_apply.py.)"""

from __future__ import annotations

import base64
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
import yaml

from app.deploy import names
from app.deploy.cloudrun import fill
from app.deploy.plan import Options, Plan, PlanError, Step, build_plan, commit_tag, render
from app.dev.tasks_emulator import TasksEmulator
from app.errors import Forbidden
from app.http import public, worker
from app.payments.stripe_events import HANDLED_TYPES
from app.settings import ROLE_REQUIREMENTS, Settings, load_settings
from app.tasks.catalog import QUEUES, scheduled
from app.tasks.oidc import OidcVerifier
from app.tasks.queue import queue_config
from tests.deploy.fake_gcloud import install
from tests.support import ROOT, run_cli

PROJECT, REGION, TAG = "hotelly-pilot", "southamerica-east1", "0123456789ab"
PROJECT_NUMBER = "123456789012"
WORKER_URL = f"https://hotelly-worker-{PROJECT_NUMBER}.{REGION}.run.app"
EMAIL = "oncall@pousada.example"
CLOUDRUN = ROOT / "deploy" / "cloudrun"
KEY = base64.b64encode(b"k" * 32).decode()
# Stand-ins for what Secret Manager holds; the URL has the unix-socket shape of Cloud SQL.
SECRET_VALUES = {
    "DATABASE_URL": f"postgresql://hotelly:pw@/hotelly?host=/cloudsql/{PROJECT}:{REGION}:hotelly",
    "PII_KEY": KEY,
    "CONTACT_HASH_KEY": KEY,
}


def _plan(root: Path = ROOT, **options: str | None) -> Plan:
    defaults = {"worker_url": WORKER_URL, "alert_email": EMAIL}
    return build_plan(Options(PROJECT, REGION, TAG, **{**defaults, **options}), root)  # type: ignore[arg-type]


def _words(argv: tuple[str, ...]) -> list[str]:
    """The command's words after `gcloud`: its group, verb and positional arguments."""
    return [a for a in argv[1:] if not a.startswith("--")]


def _flags(argv: tuple[str, ...]) -> dict[str, str]:
    return dict(
        a[2:].split("=", 1) if "=" in a else (a[2:], "") for a in argv if a.startswith("--")
    )


def _steps(plan: Plan, *words: str) -> list[Step]:
    return [s for s in plan.steps if _words(s.command)[: len(words)] == list(words)]


def _index(plan: Plan, *words: str) -> int:
    return next(
        i for i, s in enumerate(plan.steps) if _words(s.command)[: len(words)] == list(words)
    )


def _gcloud_dict(value: str) -> dict[str, str]:
    """A dict flag's value as gcloud reads it, alternate delimiter included."""
    delimiter = ","
    if value.startswith("^"):
        delimiter, value = value[1], value[3:]
    return dict(item.split("=", 1) for item in value.split(delimiter))


def _deployed(plan: Plan, role: str) -> tuple[Step, dict[str, str], dict[str, str]]:
    (step,) = _steps(plan, "run", "deploy", f"hotelly-{role}")
    flags = _flags(step.command)
    return step, _gcloud_dict(flags["set-env-vars"]), _gcloud_dict(flags["set-secrets"])


def _settings_of(plan: Plan, role: str) -> Settings:
    """What `serve` would parse from the environment the plan gives the role, its
    placeholders resolved as apply resolves them."""
    _, env, secrets = _deployed(plan, role)
    known = {"PROJECT_NUMBER": PROJECT_NUMBER}
    known |= {name: fill(template, known) for name, template in plan.derived.items()}
    resolved = {name: fill(value, known) for name, value in env.items()}
    values = {name: SECRET_VALUES.get(name, f"dummy-{name.lower()}") for name in secrets}
    return load_settings({**resolved, **values}, require_role=True)


def test_plan_runs_nothing_and_needs_no_credentials(tmp_path: Path) -> None:
    """With nothing in the environment but PATH (a fake gcloud first on it), `deploy plan`
    calls no gcloud, prints only shell-quoted gcloud commands and comments, a header naming
    the placeholders it leaves for apply, each create's fallback on the next line, and a
    JSON summary last."""
    gcloud = install(tmp_path)
    path = f"{gcloud.bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin"
    result = run_cli(
        "deploy", "plan", "--project", PROJECT, "--region", REGION, "--tag", TAG,
        "--alert-email", EMAIL, env={"PATH": path}, cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert gcloud.calls() == []
    lines = result.stdout.splitlines()
    summary = json.loads(lines[-1])
    assert summary["placeholders"][:3] == ["PROJECT_NUMBER", "PUBLIC_URL", "WORKER_URL"]
    assert "#   ${WORKER_URL}: https://hotelly-worker-${PROJECT_NUMBER}" in result.stdout
    commands = [line for line in lines[:-1] if not line.startswith("#")]
    assert len(commands) == summary["steps"]
    assert all(shlex.split(line)[0] == "gcloud" for line in commands)
    for i, line in enumerate(lines[:-1]):
        if " create " in f" {line} " and not line.startswith("#"):
            assert lines[i + 1].startswith("#   if it already exists: "), line


def test_scheduler_jobs_are_the_catalogs_scheduled_kinds_on_worker_routes() -> None:
    """One HTTP job per scheduled kind, named from its path, on its cron: POST {} as JSON
    to a worker route (never a public one) with the scheduler's OIDC token for the
    worker's URL; its update says the same."""
    plan = _plan()
    steps = _steps(plan, "scheduler", "jobs", "create", "http")
    worker_posts = {r.path for r in worker.routes if "POST" in (r.methods or ())}
    public_paths = {r.path for r in public.routes}
    jobs = {}
    for step in steps:
        flags = _flags(step.command)
        assert flags["uri"].startswith(WORKER_URL)
        path = flags["uri"].removeprefix(WORKER_URL)
        assert path in worker_posts and path not in public_paths
        jobs[_words(step.command)[4]] = (flags["schedule"], path)
        assert flags["http-method"] == "post" and flags["message-body"] == "{}"
        assert flags["headers"] == "Content-Type=application/json"
        assert flags["oidc-token-audience"] == WORKER_URL
        assert flags["oidc-service-account-email"] == names.account_email(
            "hotelly-scheduler", PROJECT
        )
        assert step.update is not None
        update = _flags(step.update)
        assert update["update-headers"] == flags.pop("headers")
        assert {k: update[k] for k in flags} == flags
    assert jobs == {
        names.scheduler_job_name(kind.path): (kind.schedule, kind.path) for kind in scheduled()
    }


def test_queues_are_the_catalogs_with_their_retry_settings() -> None:
    """Every queue of QUEUES is created (or updated) with the retry settings queues.yaml
    gives it, each key as the gcloud flag of its name."""
    plan = _plan()
    declared = yaml.safe_load((ROOT / "deploy" / "queues.yaml").read_text())["queues"]
    steps = _steps(plan, "tasks", "queues", "create")
    assert [_words(s.command)[3] for s in steps] == list(QUEUES)
    for step in steps:
        name = _words(step.command)[3]
        flags = _flags(step.command)
        assert step.update is not None and _flags(step.update) == flags
        assert flags["location"] == REGION
        assert {k: flags[k.replace("_", "-")] for k in declared[name]} == {
            k: str(v) for k, v in declared[name].items()
        }


@pytest.mark.parametrize("role", ["public", "worker"])
def test_each_role_is_deployed_with_the_settings_it_requires(role: str) -> None:
    """`serve` accepts the environment the plan gives each role (secrets standing in for
    Secret Manager's values): its ROLE, every variable ROLE_REQUIREMENTS names, production
    (no ENV, Google's certificates), the worker's audience its own URL; the public role is
    open to the internet, the worker is not."""
    plan = _plan()
    step, env, secrets = _deployed(plan, role)
    settings = _settings_of(plan, role)
    assert settings.role == role
    assert settings.env == "prod" and "ENV" not in env and "OIDC_CERTS_URL" not in env
    required = {variable for _, variable in ROLE_REQUIREMENTS[role]}
    assert required <= env.keys() | secrets.keys()
    assert set(secrets) <= set(names.SECRET_VARIABLES)
    assert all(ref == f"{names.secret_name(v)}:latest" for v, ref in secrets.items())
    assert settings.worker_url == WORKER_URL
    assert settings.public_url == f"https://hotelly-public-{PROJECT_NUMBER}.{REGION}.run.app"
    assert settings.tasks_project == PROJECT and settings.tasks_location == REGION
    flags = _flags(step.command)
    assert flags["set-cloudsql-instances"] == f"{PROJECT}:{REGION}:hotelly"
    assert flags["image"] == names.image(PROJECT, REGION, TAG)
    assert flags["service-account"] == names.account_email(f"hotelly-{role}", PROJECT)
    if role == "public":
        assert "allow-unauthenticated" in flags
    else:
        assert "no-allow-unauthenticated" in flags
        assert settings.oidc_audience == WORKER_URL
        assert "AUTO_REFUND_LATE_PAYMENTS" in env


async def test_the_scheduler_and_the_roles_tasks_carry_tokens_the_worker_accepts() -> None:
    """A real OidcVerifier built from the worker's planned settings accepts the token
    Cloud Scheduler would send for each job (its service account, its audience) and the
    tokens of the tasks either role enqueues; a token of any other account is refused."""
    plan = _plan()
    settings = _settings_of(plan, "worker")
    assert settings.oidc_audience is not None
    emulator = TasksEmulator(grpc_port=0, certs_port=0)
    probe = emulator.mint_token("probe@example.com", "probe")
    header = orjson.loads(base64.urlsafe_b64decode(probe.split(".")[0] + "=="))
    certs = {header["kid"]: emulator.certificate_pem()}
    verifier = OidcVerifier(
        certs_url="https://www.googleapis.com/oauth2/v1/certs",
        audience=settings.oidc_audience,
        allowed_emails=settings.oidc_allowed_emails,
        _http=httpx.AsyncClient(
            transport=httpx.MockTransport(lambda _: httpx.Response(200, json=certs))
        ),
    )
    try:
        callers = []
        for step in _steps(plan, "scheduler", "jobs", "create", "http"):
            flags = _flags(step.command)
            callers.append((flags["oidc-service-account-email"], flags["oidc-token-audience"]))
        for role in ("public", "worker"):
            queue = queue_config(_settings_of(plan, role))
            callers.append((queue.service_account, queue.audience))
        assert len(callers) == len(scheduled()) + 2
        for account, audience in callers:
            token = emulator.mint_token(account, audience)
            assert await verifier.verify(f"Bearer {token}") == account
        stranger = emulator.mint_token(names.account_email("hotelly-public", PROJECT), WORKER_URL)
        with pytest.raises(Forbidden):
            await verifier.verify(f"Bearer {stranger}")
    finally:
        await verifier.close()


def test_each_identity_gets_its_roles_and_exactly_the_secrets_it_mounts() -> None:
    """Project roles go to the two roles' identities only (the worker's adding the task
    viewer the re-drive needs); both may act as the tasks identity; only the tasks and
    scheduler identities invoke the worker; each secret is readable by exactly the
    identities whose workloads mount it, granted on the secret itself."""
    plan = _plan()

    def members(words: tuple[str, ...]) -> set[tuple[str, str, str]]:
        found = set()
        for step in _steps(plan, *words):
            flags = _flags(step.command)
            found.add((_words(step.command)[len(words)], flags["member"], flags["role"]))
        return found

    def sa(account: str) -> str:
        return f"serviceAccount:{names.account_email(account, PROJECT)}"

    both = {"roles/cloudsql.client", "roles/cloudtasks.enqueuer", "roles/logging.logWriter"}
    assert members(("projects", "add-iam-policy-binding")) == {
        *((PROJECT, sa("hotelly-public"), role) for role in both),
        *(
            (PROJECT, sa("hotelly-worker"), role)
            for role in both | {"roles/cloudtasks.viewer", "roles/aiplatform.user"}
        ),
    }
    tasks = names.account_email("hotelly-tasks", PROJECT)
    assert members(("iam", "service-accounts", "add-iam-policy-binding")) == {
        (tasks, sa(account), "roles/iam.serviceAccountUser")
        for account in ("hotelly-public", "hotelly-worker")
    }
    assert members(("run", "services", "add-iam-policy-binding")) == {
        ("hotelly-worker", sa(account), "roles/run.invoker")
        for account in ("hotelly-tasks", "hotelly-scheduler")
    }
    mounted = set()
    for path, account in (
        ("public.yaml", "hotelly-public"),
        ("worker.yaml", "hotelly-worker"),
        ("migrate-job.yaml", "hotelly-worker"),
    ):
        for entry in _container(yaml.safe_load((CLOUDRUN / path).read_text()))["env"]:
            if "valueFrom" in entry:
                secret = entry["valueFrom"]["secretKeyRef"]["name"]
                mounted.add((secret, sa(account), "roles/secretmanager.secretAccessor"))
    assert members(("secrets", "add-iam-policy-binding")) == mounted
    checked = {s.secret for s in plan.steps if s.kind == "secret"}
    assert checked == {secret for secret, _, _ in mounted}


def test_each_step_comes_after_what_it_needs() -> None:
    """APIs first; the image before anything runs it; every secret checked before any is
    granted or mounted; the migration executed before either service deploys; the worker
    before the public role and before its invokers, queues and scheduler jobs; the metrics
    before the channel and the policies on them."""
    plan = _plan()
    order = [
        ("services", "enable"),
        ("projects", "describe"),
        ("artifacts", "repositories", "create"),
        ("builds", "submit"),
        ("iam", "service-accounts", "create"),
        ("projects", "add-iam-policy-binding"),
        ("sql", "instances", "create"),
        ("sql", "databases", "create"),
        ("secrets", "versions", "describe"),
        ("secrets", "add-iam-policy-binding"),
        ("run", "jobs", "deploy"),
        ("run", "jobs", "execute"),
        ("run", "deploy", "hotelly-worker"),
        ("run", "deploy", "hotelly-public"),
        ("run", "services", "add-iam-policy-binding"),
        ("tasks", "queues", "create"),
        ("scheduler", "jobs", "create"),
        ("logging", "metrics", "create"),
        ("beta", "monitoring", "channels", "create"),
        ("monitoring", "policies", "create"),
    ]
    indexes = [_index(plan, *words) for words in order]
    assert indexes == sorted(indexes)
    last_check = max(i for i, s in enumerate(plan.steps) if s.kind == "secret")
    assert last_check < _index(plan, "secrets", "add-iam-policy-binding")
    (execute,) = _steps(plan, "run", "jobs", "execute")
    assert "wait" in _flags(execute.command)


def _container(doc: dict) -> dict:  # type: ignore[type-arg]
    spec = doc["spec"]["template"]["spec"]
    if doc["kind"] == "Job":
        spec = spec["template"]["spec"]
    (container,) = spec["containers"]
    return container  # type: ignore[no-any-return]


@pytest.mark.parametrize("role", ["public", "worker"])
def test_each_cloud_run_file_declares_what_its_role_requires(role: str) -> None:
    """deploy/cloudrun/<role>.yaml parses as a Knative Service running the image's `serve`
    with ROLE set, every variable ROLE_REQUIREMENTS names declared, each secret from Secret
    Manager under its derived name, and no ENV (production)."""
    doc = yaml.safe_load((CLOUDRUN / f"{role}.yaml").read_text())
    assert (doc["apiVersion"], doc["kind"]) == ("serving.knative.dev/v1", "Service")
    assert doc["metadata"]["name"] == f"hotelly-{role}"
    container = _container(doc)
    assert container["image"] == "${IMAGE}" and container["args"] == ["serve"]
    env = {e["name"]: e for e in container["env"]}
    assert env["ROLE"]["value"] == role
    assert {variable for _, variable in ROLE_REQUIREMENTS[role]} <= env.keys()
    assert "ENV" not in env
    for name, entry in env.items():
        if name in names.SECRET_VARIABLES:
            assert entry["valueFrom"]["secretKeyRef"] == {
                "name": names.secret_name(name),
                "key": "latest",
            }
        else:
            assert isinstance(entry["value"], str)


def test_the_migration_job_runs_migrate_with_only_the_database_url() -> None:
    """The migration job runs the image's `migrate` as the worker, once, without retries,
    with the Cloud SQL connection and the database URL, and no other secret."""
    doc = yaml.safe_load((CLOUDRUN / "migrate-job.yaml").read_text())
    assert (doc["apiVersion"], doc["kind"]) == ("run.googleapis.com/v1", "Job")
    container = _container(doc)
    assert container["image"] == "${IMAGE}" and container["args"] == ["migrate"]
    assert [e["name"] for e in container["env"]] == ["DATABASE_URL"]
    (step,) = _steps(_plan(), "run", "jobs", "deploy")
    flags = _flags(step.command)
    assert flags["args"] == "migrate" and flags["max-retries"] == "0"
    assert flags["set-secrets"] == "DATABASE_URL=hotelly-database-url:latest"
    assert flags["service-account"] == names.account_email("hotelly-worker", PROJECT)
    assert flags["set-cloudsql-instances"] == f"{PROJECT}:{REGION}:hotelly"


@pytest.fixture
def deploy_copy(tmp_path: Path) -> Path:
    """A root whose deploy/ is a copy of ours, for a test to change."""
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    return tmp_path


@pytest.mark.parametrize(
    ("file", "old", "new", "refusal"),
    [
        (
            "worker.yaml",
            "      containerConcurrency: 40",
            "      containerConcurrency: 40\n      volumes: []",
            "volumes, which the deploy does not apply",
        ),
        (
            "public.yaml",
            "valueFrom: {secretKeyRef: {name: hotelly-stripe-webhook-secret, key: latest}}",
            'value: "whsec_in_the_repository"',
            "STRIPE_WEBHOOK_SECRET is a secret",
        ),
        (
            "public.yaml",
            "- {name: ROLE, value: public}",
            "- {name: ROLE, value: public}\n            - {name: ROLES, value: public}",
            "ROLES is not a setting",
        ),
        ("worker.yaml", "${IMAGE}", "${IMAGE_URL}", "unknown placeholder IMAGE_URL"),
    ],
)
def test_a_deploy_file_the_deploy_cannot_apply_is_refused(
    deploy_copy: Path, file: str, old: str, new: str, refusal: str
) -> None:
    """A field the deploy would drop, a secret written as a plain value, a variable that is
    no setting, a placeholder nobody fills: the plan refuses, naming it."""
    path = deploy_copy / "deploy" / "cloudrun" / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(PlanError, match=refusal):
        _plan(deploy_copy)


def _monitoring_steps(plan: Plan) -> list[Step]:
    return [s for s in plan.steps if _words(s.command)[0] in ("logging", "beta", "monitoring")]


def test_monitoring_is_optional_and_alerts_page_the_alert_email(deploy_copy: Path) -> None:
    """Without deploy/monitoring (or with it empty) the plan has no metric, channel or
    policy step; with alert policies, the channel is --alert-email's, and a placeholder
    without it (which apply refuses: tests/deploy/test_apply.py)."""
    monitoring = deploy_copy / "deploy" / "monitoring"
    if (monitoring / "alerts").is_dir() and any((monitoring / "alerts").iterdir()):
        assert "ALERT_EMAIL" in _plan(deploy_copy, alert_email=None).placeholders
        (channel,) = _steps(_plan(deploy_copy), "beta", "monitoring", "channels", "create")
        assert _flags(channel.command)["channel-labels"] == f"email_address={EMAIL}"
    shutil.rmtree(monitoring, ignore_errors=True)
    assert _monitoring_steps(_plan(deploy_copy)) == []
    (monitoring / "alerts").mkdir(parents=True)
    (monitoring / "metrics").mkdir()
    plan = _plan(deploy_copy, alert_email=None)
    assert _monitoring_steps(plan) == []
    assert "ALERT_CHANNEL" not in plan.placeholders and "ALERT_EMAIL" not in plan.placeholders


def test_the_plan_names_a_placeholder_for_every_value_only_apply_knows() -> None:
    """Every ${NAME} left in a command is one the header explains; given --worker-url, the
    worker's URL is no placeholder and is used as given."""
    for plan in (_plan(), _plan(worker_url=None, alert_email=None)):
        used = set()
        for step in plan.steps:
            for argv in (step.command, step.update or (), step.lookup or ()):
                used |= {
                    token.split("${", 1)[1].split("}", 1)[0] for token in argv if "${" in token
                }
        assert used <= set(plan.placeholders)
        assert all(f"${{{name}}}" in "\n".join(render(plan)) for name in plan.placeholders)
    assert "WORKER_URL" not in _plan().placeholders
    assert "WORKER_URL" in _plan(worker_url=None).placeholders


def test_the_tag_is_the_commit_checked_out(tmp_path: Path) -> None:
    """Without --tag the image is tagged with the commit (12 hex digits), and a tree with
    changes is reported as such (apply refuses it)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip

    git("init", "-q")
    (tmp_path / "file").write_text("one")
    git("add", "file")
    git("commit", "-q", "-m", "one")
    assert commit_tag(tmp_path) == (git("rev-parse", "--short=12", "HEAD").strip(), False)
    (tmp_path / "file").write_text("two")
    assert commit_tag(tmp_path)[1] is True


def test_docs_give_the_webhook_urls_and_the_event_types_the_app_handles() -> None:
    """docs/deploy.md gives Stripe and Meta the public role's webhook paths, lists every
    Stripe event type the app handles, and subscribes Meta to `messages`."""
    doc = (ROOT / "docs" / "deploy.md").read_text()
    for path in ("/webhooks/stripe", "/webhooks/whatsapp/meta"):
        assert path in {r.path for r in public.routes}
        assert f"<public URL>{path}" in doc
    for event_type in HANDLED_TYPES:
        assert f"`{event_type}`" in doc
    assert "`messages`" in doc
