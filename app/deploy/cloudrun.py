"""deploy/cloudrun/*.yaml, the one record of how each role and the migration job run, read
into the flags of ``gcloud run deploy`` and ``gcloud run jobs deploy``.

The files are complete Knative references (the shape ``gcloud run services describe
--format=export`` prints) with ``${NAME}`` placeholders. Every field in them becomes a flag
or is refused, so no setting written there is silently left out of a deploy. Variables
must be settings of app/settings.py; the Secret-typed ones must come from Secret Manager
(``valueFrom.secretKeyRef``, under the name ``names.secret_name`` gives) and every other
one must be a plain value, so a secret can never be deployed as plain text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from app.deploy.names import SECRET_VARIABLES, SETTING_VARIABLES, secret_name

PLACEHOLDER = re.compile(r"\$\{([A-Z_]+)\}")
# What gcloud's --startup-probe and --liveness-probe accept (gcloud run deploy --help).
_PROBE_KEYS = {
    "startupProbe": (
        "--startup-probe",
        {
            "initialDelaySeconds",
            "timeoutSeconds",
            "periodSeconds",
            "failureThreshold",
            "httpGet.port",
            "httpGet.path",
            "grpc.port",
            "grpc.service",
            "tcpSocket.port",
        },
    ),
    "livenessProbe": (
        "--liveness-probe",
        {
            "initialDelaySeconds",
            "timeoutSeconds",
            "periodSeconds",
            "failureThreshold",
            "httpGet.port",
            "httpGet.path",
            "grpc.port",
            "grpc.service",
        },
    ),
}
_SERVICE_ANNOTATIONS = {"run.googleapis.com/ingress": "--ingress"}
_REVISION_ANNOTATIONS = {
    "autoscaling.knative.dev/maxScale": "--max-instances",
    "autoscaling.knative.dev/minScale": "--min-instances",
    "run.googleapis.com/cloudsql-instances": "--set-cloudsql-instances",
}
_EXECUTION_ANNOTATIONS = {
    "run.googleapis.com/cloudsql-instances": "--set-cloudsql-instances",
}
# A value with a comma needs gcloud's alternate delimiter (gcloud topic escaping).
_DELIMITERS = ";|#~"


class DeployConfigError(Exception):
    """A deploy file says something the deploy cannot apply."""


@dataclass(frozen=True)
class Workload:
    """A service or job as its file declares it, and the flags that deploy it so."""

    name: str
    flags: tuple[str, ...]
    service_account: str
    env: dict[str, str]
    # Variable → "secret:version".
    secrets: dict[str, str]


def fill(text: str, values: dict[str, str]) -> str:
    """``${NAME}`` replaced where ``values`` knows it; the others stay for apply to resolve."""
    return PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), text)


def joined(items: list[str]) -> str:
    """One list or dict flag value, with an alternate delimiter when an item has a comma."""
    if not any("," in item for item in items):
        return ",".join(items)
    free = [d for d in _DELIMITERS if not any(d in item for item in items)]
    if not free:
        raise DeployConfigError(f"no delimiter fits the values {items!r}")
    return f"^{free[0]}^" + free[0].join(items)


class _Reader:
    """Walks one file, consuming each field it turns into a flag; what is left is refused."""

    def __init__(self, path: Path, values: dict[str, str]) -> None:
        self.path = path
        self.values = values
        self.flags: list[str] = []

    def load(self, api_version: str, kind: str) -> dict[str, Any]:
        doc = self._filled(yaml.safe_load(self.path.read_text()))
        if not isinstance(doc, dict):
            raise DeployConfigError(f"{self.path.name}: not a YAML mapping")
        for key, expected in (("apiVersion", api_version), ("kind", kind)):
            if doc.pop(key, None) != expected:
                raise DeployConfigError(f"{self.path.name}: {key} must be {expected}")
        return doc

    def _filled(self, node: Any) -> Any:
        if isinstance(node, str):
            return fill(node, self.values)
        if isinstance(node, dict):
            return {key: self._filled(value) for key, value in node.items()}
        if isinstance(node, list):
            return [self._filled(item) for item in node]
        return node

    def take(self, node: dict[str, Any], key: str, where: str, kind: type = dict) -> Any:
        if key not in node:
            raise DeployConfigError(f"{self.path.name}: {where}.{key} is required")
        value = node.pop(key)
        if not isinstance(value, kind):
            raise DeployConfigError(f"{self.path.name}: {where}.{key} must be a {kind.__name__}")
        return value

    def done(self, node: dict[str, Any], where: str) -> None:
        if node:
            unknown = ", ".join(sorted(node))
            raise DeployConfigError(
                f"{self.path.name}: {where} has {unknown}, which the deploy does not apply"
            )

    def annotations(self, metadata: dict[str, Any], where: str, flags: dict[str, str]) -> None:
        annotations = metadata.pop("annotations", {})
        for key, flag in flags.items():
            if key in annotations:
                self.flags.append(f"{flag}={annotations.pop(key)}")
        self.done(annotations, f"{where}.annotations")

    def container(self, spec: dict[str, Any], where: str) -> tuple[dict[str, str], dict[str, str]]:
        containers = self.take(spec, "containers", where, list)
        if len(containers) != 1:
            raise DeployConfigError(f"{self.path.name}: {where}.containers must hold one")
        container, where = containers[0], f"{where}.containers[0]"
        self.flags.append(f"--image={self.take(container, 'image', where, str)}")
        if "args" in container:
            self.flags.append(f"--args={joined([str(a) for a in container.pop('args')])}")
        for port in container.pop("ports", []):
            self.flags.append(f"--port={self.take(port, 'containerPort', f'{where}.ports[]', int)}")
            if port.pop("name", "http1") != "http1":
                # h2c would need --use-http2, which the deploy does not pass.
                raise DeployConfigError(f"{self.path.name}: {where}.ports[].name must be http1")
            self.done(port, f"{where}.ports[]")
        resources = container.pop("resources", {})
        limits = resources.pop("limits", {})
        for key in ("cpu", "memory"):
            if key in limits:
                self.flags.append(f"--{key}={limits.pop(key)}")
        self.done(limits, f"{where}.resources.limits")
        self.done(resources, f"{where}.resources")
        env, secrets = self._environment(container.pop("env", []), where)
        if env:
            self.flags.append(f"--set-env-vars={joined([f'{k}={v}' for k, v in env.items()])}")
        if secrets:
            self.flags.append(f"--set-secrets={joined([f'{k}={v}' for k, v in secrets.items()])}")
        for key, (flag, allowed) in _PROBE_KEYS.items():
            if key in container:
                settings = dict(_flattened(container.pop(key)))
                if not settings.keys() <= allowed:
                    unknown = ", ".join(sorted(settings.keys() - allowed))
                    raise DeployConfigError(f"{self.path.name}: {where}.{key}: {unknown}")
                self.flags.append(f"{flag}={joined([f'{k}={v}' for k, v in settings.items()])}")
        self.done(container, where)
        return env, secrets

    def _environment(
        self, entries: list[dict[str, Any]], where: str
    ) -> tuple[dict[str, str], dict[str, str]]:
        env: dict[str, str] = {}
        secrets: dict[str, str] = {}
        for entry in entries:
            name = entry.get("name")
            if name not in SETTING_VARIABLES:
                raise DeployConfigError(
                    f"{self.path.name}: {where}.env: {name} is not a setting of app/settings.py"
                )
            if name in env or name in secrets:
                raise DeployConfigError(f"{self.path.name}: {where}.env: {name} is set twice")
            if name in SECRET_VARIABLES:
                source = entry.get("valueFrom", {})
                ref = source.get("secretKeyRef", {})
                if (
                    set(entry) != {"name", "valueFrom"}
                    or set(source) != {"secretKeyRef"}
                    or not set(ref) <= {"name", "key"}
                    or ref.get("name") != secret_name(name)
                ):
                    raise DeployConfigError(
                        f"{self.path.name}: {where}.env: {name} is a secret: "
                        f"valueFrom.secretKeyRef {{name: {secret_name(name)}, key: latest}}"
                    )
                secrets[name] = f"{ref['name']}:{ref.get('key', 'latest')}"
            elif set(entry) == {"name", "value"} and isinstance(entry["value"], str):
                env[name] = entry["value"]
            else:
                raise DeployConfigError(
                    f"{self.path.name}: {where}.env: {name} needs a value, as a quoted string"
                )
        return env, secrets


def _flattened(node: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, value in node.items():
        if isinstance(value, dict):
            pairs.extend(_flattened(value, f"{prefix}{key}."))
        else:
            pairs.append((f"{prefix}{key}", str(value)))
    return pairs


def read_service(path: Path, values: dict[str, str]) -> Workload:
    """A Knative Service (serving.knative.dev/v1) into ``gcloud run deploy`` flags."""
    reader = _Reader(path, values)
    doc = reader.load("serving.knative.dev/v1", "Service")
    metadata = reader.take(doc, "metadata", "")
    name = reader.take(metadata, "name", "metadata", str)
    reader.annotations(metadata, "metadata", _SERVICE_ANNOTATIONS)
    reader.done(metadata, "metadata")
    spec = reader.take(doc, "spec", "")
    template = reader.take(spec, "template", "spec")
    reader.done(spec, "spec")
    revision = template.pop("metadata", {})
    reader.annotations(revision, "spec.template.metadata", _REVISION_ANNOTATIONS)
    reader.done(revision, "spec.template.metadata")
    pod = reader.take(template, "spec", "spec.template")
    reader.done(template, "spec.template")
    where = "spec.template.spec"
    account = reader.take(pod, "serviceAccountName", where, str)
    reader.flags.append(f"--service-account={account}")
    if "containerConcurrency" in pod:
        reader.flags.append(f"--concurrency={pod.pop('containerConcurrency')}")
    if "timeoutSeconds" in pod:
        reader.flags.append(f"--timeout={pod.pop('timeoutSeconds')}s")
    env, secrets = reader.container(pod, where)
    reader.done(pod, where)
    reader.done(doc, "the file")
    return Workload(name, tuple(reader.flags), account, env, secrets)


def read_job(path: Path, values: dict[str, str]) -> Workload:
    """A Cloud Run Job (run.googleapis.com/v1) into ``gcloud run jobs deploy`` flags."""
    reader = _Reader(path, values)
    doc = reader.load("run.googleapis.com/v1", "Job")
    metadata = reader.take(doc, "metadata", "")
    name = reader.take(metadata, "name", "metadata", str)
    reader.done(metadata, "metadata")
    spec = reader.take(doc, "spec", "")
    execution = reader.take(spec, "template", "spec")
    reader.done(spec, "spec")
    annotated = execution.pop("metadata", {})
    reader.annotations(annotated, "spec.template.metadata", _EXECUTION_ANNOTATIONS)
    reader.done(annotated, "spec.template.metadata")
    execution_spec = reader.take(execution, "spec", "spec.template")
    reader.done(execution, "spec.template")
    if "taskCount" in execution_spec:
        reader.flags.append(f"--tasks={execution_spec.pop('taskCount')}")
    task = reader.take(execution_spec, "template", "spec.template.spec")
    reader.done(execution_spec, "spec.template.spec")
    task_spec = reader.take(task, "spec", "spec.template.spec.template")
    reader.done(task, "spec.template.spec.template")
    where = "spec.template.spec.template.spec"
    account = reader.take(task_spec, "serviceAccountName", where, str)
    reader.flags.append(f"--service-account={account}")
    if "maxRetries" in task_spec:
        reader.flags.append(f"--max-retries={task_spec.pop('maxRetries')}")
    if "timeoutSeconds" in task_spec:
        reader.flags.append(f"--task-timeout={task_spec.pop('timeoutSeconds')}s")
    env, secrets = reader.container(task_spec, where)
    reader.done(task_spec, where)
    reader.done(doc, "the file")
    return Workload(name, tuple(reader.flags), account, env, secrets)
