"""The names of what the deploy creates, each derived in one place."""

from __future__ import annotations

import dataclasses
import typing

from app.settings import Secret, Settings

PREFIX = "hotelly"
REPOSITORY = PREFIX  # the Artifact Registry repository
WORKER_SERVICE = f"{PREFIX}-worker"
PUBLIC_SERVICE = f"{PREFIX}-public"
MIGRATE_JOB = f"{PREFIX}-migrate"
DATABASE = PREFIX
DEFAULT_INSTANCE = PREFIX

# The identities: each role's own, the one Cloud Tasks signs the tasks' OIDC tokens with,
# and Cloud Scheduler's. Only the last two may invoke the worker.
PUBLIC_ACCOUNT = f"{PREFIX}-public"
WORKER_ACCOUNT = f"{PREFIX}-worker"
TASKS_ACCOUNT = f"{PREFIX}-tasks"
SCHEDULER_ACCOUNT = f"{PREFIX}-scheduler"
ACCOUNTS = (PUBLIC_ACCOUNT, WORKER_ACCOUNT, TASKS_ACCOUNT, SCHEDULER_ACCOUNT)


def account_email(account: str, project: str) -> str:
    return f"{account}@{project}.iam.gserviceaccount.com"


def image(project: str, region: str, tag: str) -> str:
    return f"{region}-docker.pkg.dev/{project}/{REPOSITORY}/{PREFIX}:{tag}"


def run_url(service: str, project_number: str, region: str) -> str:
    """Cloud Run's deterministic URL of a service, known before its first deploy."""
    return f"https://{service}-{project_number}.{region}.run.app"


def _secret_variables() -> tuple[str, ...]:
    hints = typing.get_type_hints(Settings)
    return tuple(
        field.name.upper()
        for field in dataclasses.fields(Settings)
        if Secret in (hints[field.name], *typing.get_args(hints[field.name]))
    )


# The variables whose values come from Secret Manager: the Secret-typed settings.
SECRET_VARIABLES = _secret_variables()
SETTING_VARIABLES = frozenset(field.name.upper() for field in dataclasses.fields(Settings))


def secret_name(variable: str) -> str:
    """DATABASE_URL is kept in the secret ``hotelly-database-url``."""
    return f"{PREFIX}-{variable.lower().replace('_', '-')}"


def scheduler_job_name(path: str) -> str:
    """/tasks/holds/sweep is run by the Cloud Scheduler job ``hotelly-holds-sweep``."""
    return f"{PREFIX}-{path.removeprefix('/tasks/').strip('/').replace('/', '-')}"
