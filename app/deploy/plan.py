"""The deploy as data: every gcloud command, in the order that makes each one safe.

Order, and why:

1. the APIs, then the project number (the services' URLs are derived from it);
2. the Artifact Registry repository and the image, built by Cloud Build only when the tag
   is not there yet (the tag is the commit, so a second apply builds nothing);
3. the service accounts and their project roles, least privilege: both roles connect to
   Cloud SQL, enqueue tasks and write logs, and may attach the tasks identity to the
   tasks they create; the worker may also read tasks (the receipts' re-drive asks Cloud
   Tasks whether a task is gone); the tasks and scheduler identities only invoke the
   worker (step 7);
4. the Cloud SQL instance and its database;
5. the secrets each workload mounts must have a version: apply checks them all and stops
   before anything that needs them, naming the missing ones; then each identity may read
   exactly the secrets it mounts, granted per secret;
6. the migration job, executed to completion before any service is deployed, so a new
   revision takes traffic only on a migrated schema (migrations are expand/contract, so
   the revision still serving keeps working);
7. the worker, then the public role (settings from deploy/cloudrun/*.yaml), and who may
   invoke the worker;
8. the Cloud Tasks queues (QUEUES, retry settings from deploy/queues.yaml) and one Cloud
   Scheduler job per scheduled kind of the task catalog, whose OIDC audience is the
   worker's URL, as the worker's verifier demands;
9. the log-based metrics and alert policies of deploy/monitoring, paging the e-mail
   channel of --alert-email.

Creates that find their resource run its update instead (or keep it), so every step is
safe to repeat. Values only apply can know are ``${NAME}`` placeholders.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from app.deploy import names
from app.deploy.cloudrun import PLACEHOLDER, DeployConfigError, Workload, read_job, read_service
from app.tasks.catalog import QUEUES, scheduled

ROOT = Path(__file__).resolve().parent.parent.parent
APIS = (
    "cloudresourcemanager.googleapis.com",
    "iam.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "run.googleapis.com",
    "sqladmin.googleapis.com",
    "secretmanager.googleapis.com",
    "cloudtasks.googleapis.com",
    "cloudscheduler.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "aiplatform.googleapis.com",  # Gemini, when the worker's UNDERSTANDING_MODEL is set
)
_BOTH_ROLES = ("roles/cloudsql.client", "roles/cloudtasks.enqueuer", "roles/logging.logWriter")
PROJECT_ROLES = {
    names.PUBLIC_ACCOUNT: _BOTH_ROLES,
    # aiplatform.user: calling Gemini on Vertex AI (UNDERSTANDING_MODEL), nothing else.
    names.WORKER_ACCOUNT: (*_BOTH_ROLES, "roles/cloudtasks.viewer", "roles/aiplatform.user"),
}
# Who may invoke the worker: Cloud Tasks' identity and Cloud Scheduler's, nobody else.
INVOKERS = (names.TASKS_ACCOUNT, names.SCHEDULER_ACCOUNT)
SQL_VERSION = "POSTGRES_15"
# One dedicated vCPU (shared-core tiers have no SLA); 100 connections, which the services'
# maxScale times DB_POOL_MAX in deploy/cloudrun/*.yaml stay under.
SQL_TIER = "db-custom-1-3840"
SQL_BACKUP_START = "05:00"  # UTC: 02:00 in Brasília, the inns' quietest hour
SERVICES = ("worker", "public")  # in deploy order: the worker serves what the public enqueues
SCHEDULER_BODY = "{}"
FOUND = "FOUND"
ALERT_EMAIL = "ALERT_EMAIL"

Kind = Literal["run", "create", "secret"]


class PlanError(Exception):
    """The plan cannot be built from these options and files."""


@dataclass(frozen=True)
class Options:
    project: str
    region: str
    tag: str
    worker_url: str | None = None
    cloudsql_instance: str = names.DEFAULT_INSTANCE
    alert_email: str | None = None


@dataclass(frozen=True)
class Step:
    """One command. ``create``: a resource that may exist already; then ``update`` runs
    instead (None: it is kept as it is). With a ``lookup``, the resource exists when the
    lookup prints its name (``${FOUND}`` in ``update``); without one, when the command
    fails saying so. ``secret``: a check that the secret has a version; apply stops after
    the checks if any is missing. ``defines``: the command's output is that placeholder."""

    kind: Kind
    command: tuple[str, ...]
    update: tuple[str, ...] | None = None
    lookup: tuple[str, ...] | None = None
    defines: str | None = None
    secret: str | None = None


@dataclass(frozen=True)
class Plan:
    options: Options
    image: str
    steps: tuple[Step, ...]
    # Placeholders apply resolves, with how (for the plan's header).
    placeholders: dict[str, str]
    # A placeholder's value in terms of others (WORKER_URL from PROJECT_NUMBER).
    derived: dict[str, str]


def commit_tag(root: Path = ROOT) -> tuple[str, bool]:
    """The image tag of the checked-out commit, and whether the tree differs from it."""
    try:
        tag = _git(root, "rev-parse", "--short=12", "HEAD").strip()
        dirty = bool(_git(root, "status", "--porcelain").strip())
    except (OSError, subprocess.CalledProcessError) as exc:
        raise PlanError(f"no --tag given and git cannot name the commit: {exc}") from None
    return tag, dirty


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    ).stdout


def secret_create_command(secret: str, project: str) -> str:
    """What the operator runs to create a secret: the value comes from their shell, never
    from a command line or this repository."""
    return f'printf %s "$VALUE" | gcloud secrets create {secret} --data-file=- --project={project}'


class _Builder:
    """Collects the steps; every command names the project and never prompts."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.steps: list[Step] = []
        self.placeholders: dict[str, str] = {}

    def gcloud(self, *words: str) -> tuple[str, ...]:
        return ("gcloud", *words, f"--project={self.options.project}", "--quiet")

    def run(self, *words: str, defines: str | None = None) -> None:
        self.steps.append(Step("run", self.gcloud(*words), defines=defines))

    def create(
        self,
        words: tuple[str, ...],
        update: tuple[str, ...] | None = None,
        lookup: tuple[str, ...] | None = None,
        defines: str | None = None,
    ) -> None:
        self.steps.append(
            Step(
                "create",
                self.gcloud(*words),
                update=self.gcloud(*update) if update else None,
                lookup=self.gcloud(*lookup) if lookup else None,
                defines=defines,
            )
        )

    def email(self, account: str) -> str:
        return names.account_email(account, self.options.project)

    def member(self, account: str) -> str:
        return f"--member=serviceAccount:{self.email(account)}"


def build_plan(options: Options, root: Path = ROOT) -> Plan:
    """Every step, in order, for ``options``; reads root/deploy."""
    o = options
    image = names.image(o.project, o.region, o.tag)
    derived = {
        "PUBLIC_URL": names.run_url(names.PUBLIC_SERVICE, "${PROJECT_NUMBER}", o.region),
        "WORKER_URL": names.run_url(names.WORKER_SERVICE, "${PROJECT_NUMBER}", o.region),
    }
    values = {
        "PROJECT": o.project,
        "REGION": o.region,
        "IMAGE": image,
        "CLOUDSQL_INSTANCE": o.cloudsql_instance,
    }
    if o.worker_url is not None:
        values["WORKER_URL"] = o.worker_url.rstrip("/")
        del derived["WORKER_URL"]
    cloudrun = root / "deploy" / "cloudrun"
    try:
        services = {role: read_service(cloudrun / f"{role}.yaml", values) for role in SERVICES}
        job = read_job(cloudrun / "migrate-job.yaml", values)
    except (OSError, DeployConfigError) as exc:
        raise PlanError(str(exc)) from None
    _check_placeholders([*services.values(), job], {*derived, *values})

    b = _Builder(o)
    b.placeholders["PROJECT_NUMBER"] = f"what `gcloud projects describe {o.project}` prints"
    for name, url in derived.items():
        b.placeholders[name] = f"{url}, once apply has the project number"
    if "WORKER_URL" in derived:
        b.placeholders["WORKER_URL"] += " (or give --worker-url)"
    b.run("services", "enable", *APIS)
    b.run(
        "projects", "describe", o.project, "--format=value(projectNumber)", defines="PROJECT_NUMBER"
    )
    _image(b, image)
    _identities(b)
    _database(b)
    _secrets(b, [*services.values(), job])
    _workloads(b, services, job)
    for queue, flags in _queues(root).items():
        where = (queue, f"--location={o.region}", *flags)
        b.create(
            ("tasks", "queues", "create", *where), update=("tasks", "queues", "update", *where)
        )
    _scheduler_jobs(b, values.get("WORKER_URL", "${WORKER_URL}"), services["worker"])
    _monitoring(b, root)
    return Plan(o, image, tuple(b.steps), b.placeholders, derived)


def _image(b: _Builder, image: str) -> None:
    b.create(
        (
            "artifacts",
            "repositories",
            "create",
            names.REPOSITORY,
            "--repository-format=docker",
            f"--location={b.options.region}",
        )
    )
    # A config file, since `builds submit --tag` needs the Dockerfile at the root.
    b.create(
        (
            "builds",
            "submit",
            "--config=deploy/cloudbuild.yaml",
            f"--substitutions=_IMAGE={image}",
            ".",
        ),
        lookup=(
            "artifacts",
            "docker",
            "images",
            "describe",
            image,
            "--format=value(image_summary.digest)",
        ),
    )


def _identities(b: _Builder) -> None:
    for account in names.ACCOUNTS:
        b.create(("iam", "service-accounts", "create", account, f"--display-name={account}"))
    for account, roles in PROJECT_ROLES.items():
        for role in roles:
            b.run(
                "projects",
                "add-iam-policy-binding",
                b.options.project,
                b.member(account),
                f"--role={role}",
                "--condition=None",
            )
        # Creating a task that carries the tasks identity's token needs actAs on it.
        b.run(
            "iam",
            "service-accounts",
            "add-iam-policy-binding",
            b.email(names.TASKS_ACCOUNT),
            b.member(account),
            "--role=roles/iam.serviceAccountUser",
        )


def _database(b: _Builder) -> None:
    instance = b.options.cloudsql_instance
    b.create(
        (
            "sql",
            "instances",
            "create",
            instance,
            f"--database-version={SQL_VERSION}",
            "--edition=enterprise",
            f"--tier={SQL_TIER}",
            f"--region={b.options.region}",
            f"--backup-start-time={SQL_BACKUP_START}",
            "--enable-point-in-time-recovery",
            "--deletion-protection",
        )
    )
    b.create(("sql", "databases", "create", names.DATABASE, f"--instance={instance}"))


def _secrets(b: _Builder, workloads: list[Workload]) -> None:
    """Every mounted secret checked first, then granted to exactly who mounts it."""
    readers: dict[str, list[str]] = {}
    for workload in workloads:
        for reference in workload.secrets.values():
            emails = readers.setdefault(reference.split(":", 1)[0], [])
            if workload.service_account not in emails:
                emails.append(workload.service_account)
    for secret in readers:
        check = ("secrets", "versions", "describe", "latest", f"--secret={secret}")
        b.steps.append(Step("secret", b.gcloud(*check, "--format=value(state)"), secret=secret))
    for secret, emails in readers.items():
        for email in emails:
            b.run(
                "secrets",
                "add-iam-policy-binding",
                secret,
                f"--member=serviceAccount:{email}",
                "--role=roles/secretmanager.secretAccessor",
            )


def _workloads(b: _Builder, services: dict[str, Workload], job: Workload) -> None:
    region = f"--region={b.options.region}"
    b.run("run", "jobs", "deploy", job.name, region, *job.flags)
    b.run("run", "jobs", "execute", job.name, region, "--wait")
    for role in SERVICES:
        service = services[role]
        access = "--allow-unauthenticated" if role == "public" else "--no-allow-unauthenticated"
        b.run("run", "deploy", service.name, region, *service.flags, access)
    for account in INVOKERS:
        b.run(
            "run",
            "services",
            "add-iam-policy-binding",
            services["worker"].name,
            region,
            b.member(account),
            "--role=roles/run.invoker",
        )


def _check_placeholders(workloads: list[Workload], known: set[str]) -> None:
    for workload in workloads:
        for flag in workload.flags:
            unknown = set(PLACEHOLDER.findall(flag)) - known
            if unknown:
                raise PlanError(
                    f"{workload.name}: unknown placeholder {', '.join(sorted(unknown))}"
                )


def _queues(root: Path) -> dict[str, list[str]]:
    path = root / "deploy" / "queues.yaml"
    queues = yaml.safe_load(path.read_text())["queues"]
    if set(queues) != set(QUEUES):
        raise PlanError(f"{path.name} must define exactly the queues {', '.join(QUEUES)}")
    return {
        name: [f"--{key.replace('_', '-')}={value}" for key, value in queues[name].items()]
        for name in QUEUES
    }


def _scheduler_jobs(b: _Builder, worker_url: str, worker: Workload) -> None:
    audience = worker.env.get("OIDC_AUDIENCE")
    allowed = worker.env.get("OIDC_ALLOWED_EMAILS", "").split(",")
    scheduler = b.email(names.SCHEDULER_ACCOUNT)
    if audience != worker_url or scheduler not in allowed:
        # The worker would refuse every scheduled call: the token's audience and e-mail
        # are what its verifier checks.
        raise PlanError(
            "worker.yaml must set OIDC_AUDIENCE to ${WORKER_URL} and list the scheduler's "
            "service account in OIDC_ALLOWED_EMAILS"
        )
    for kind in scheduled():
        assert kind.schedule is not None
        target = (
            f"--schedule={kind.schedule}",
            f"--uri={worker_url}{kind.path}",
            "--http-method=post",
            f"--message-body={SCHEDULER_BODY}",
            f"--oidc-service-account-email={scheduler}",
            f"--oidc-token-audience={audience}",
            f"--location={b.options.region}",
        )
        name = names.scheduler_job_name(kind.path)
        b.create(
            ("scheduler", "jobs", "create", "http", name, *target, _header("--headers")),
            update=(
                "scheduler",
                "jobs",
                "update",
                "http",
                name,
                *target,
                _header("--update-headers"),
            ),
        )


def _header(flag: str) -> str:
    return f"{flag}=Content-Type=application/json"


def _monitoring(b: _Builder, root: Path) -> None:
    directory = root / "deploy" / "monitoring"
    for path in sorted((directory / "metrics").glob("*.yaml")):
        where = (path.stem, f"--config-from-file={path.relative_to(root)}")
        b.create(
            ("logging", "metrics", "create", *where),
            update=("logging", "metrics", "update", *where),
        )
    alerts = sorted((directory / "alerts").glob("*.yaml"))
    if not alerts:
        return
    email = b.options.alert_email or f"${{{ALERT_EMAIL}}}"
    if not b.options.alert_email:
        b.placeholders[ALERT_EMAIL] = (
            "give --alert-email (apply refuses alert policies that would page no one)"
        )
    email_filter = f'type="email" AND labels.email_address="{email}"'
    b.create(
        (
            "beta",
            "monitoring",
            "channels",
            "create",
            f"--display-name=Hotelly on-call ({email})",
            "--type=email",
            f"--channel-labels=email_address={email}",
            "--format=value(name)",
        ),
        lookup=(
            "beta",
            "monitoring",
            "channels",
            "list",
            f"--filter={email_filter}",
            "--format=value(name)",
        ),
        defines="ALERT_CHANNEL",
    )
    b.placeholders["ALERT_CHANNEL"] = (
        f"the name of the e-mail channel of {email}, listed or created"
    )
    b.placeholders[FOUND] = "the name of the policy its look-up listed"
    seen: set[str] = set()
    for path in alerts:
        display_name = (yaml.safe_load(path.read_text()) or {}).get("displayName")
        if not isinstance(display_name, str) or '"' in display_name or display_name in seen:
            raise PlanError(f"{path.name}: needs a displayName of its own, without quotes")
        seen.add(display_name)
        source = f"--policy-from-file={path.relative_to(root)}"
        b.create(
            (
                "monitoring",
                "policies",
                "create",
                source,
                "--notification-channels=${ALERT_CHANNEL}",
            ),
            update=(
                "monitoring",
                "policies",
                "update",
                f"${{{FOUND}}}",
                source,
                "--set-notification-channels=${ALERT_CHANNEL}",
            ),
            lookup=(
                "monitoring",
                "policies",
                "list",
                f'--filter=displayName="{display_name}"',
                "--format=value(name)",
            ),
        )


def render(plan: Plan) -> list[str]:
    """The plan as shell lines: a header naming the placeholders, then each command
    (shlex-quoted), with comments for what happens when its resource already exists."""
    o = plan.options
    lines = [
        f"# hotelly deploy plan: project {o.project}, region {o.region}, image {plan.image}",
        "# Run from the repository root; `python -m app deploy apply` runs these in order.",
        "# Placeholders apply resolves:",
    ]
    lines += [f"#   ${{{name}}}: {how}" for name, how in plan.placeholders.items()]
    for step in plan.steps:
        lines.append(shlex.join(step.command))
        if step.kind == "create":
            then = shlex.join(step.update) if step.update else "keep it"
            lines.append(f"#   if it already exists: {then}")
            if step.lookup:
                lines.append(
                    f"#   (it exists when this prints its name: {shlex.join(step.lookup)})"
                )
        if step.kind == "secret":
            assert step.secret is not None
            create = secret_create_command(step.secret, o.project)
            lines.append(f"#   if it has no version: {create}; apply stops after the checks")
        if step.defines:
            lines.append(f"#   prints ${{{step.defines}}}")
    return lines
