"""Log lines from a real `serve` process: JSON with the fields Cloud Logging reads."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import orjson
import pytest

from app.dev.postgres import free_port
from tests.support import ROOT, SERVE_ENV, app_env, wait_http

TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def serve_process(db_url: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve"],
        env=app_env(
            DATABASE_URL=db_url,
            ROLE="public",
            PORT=str(port),
            HOST="127.0.0.1",
            GOOGLE_CLOUD_PROJECT="demo-project",
            **SERVE_ENV,
        ),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/health", process)
        yield base, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=15)


def test_log_lines_are_json_with_context_fields(serve_process) -> None:  # type: ignore[no-untyped-def]
    """Every output line is JSON with severity, message, role and correlation_id; access
    lines carry method, path template, status and duration but no query string; a trace
    header adds logging.googleapis.com/trace; a 404 logs one line without a traceback."""
    base, process = serve_process
    httpx.get(
        f"{base}/health?phone=5511999990000",
        headers={"X-Cloud-Trace-Context": f"{TRACE}/1;o=1", "X-Correlation-Id": "corr-1"},
    )
    httpx.get(f"{base}/tasks/nothing-here?token=hunter2")
    process.terminate()
    output, _ = process.communicate(timeout=15)
    assert process.returncode == 0
    lines = [orjson.loads(line) for line in output.splitlines() if line.strip()]
    assert lines, output
    for line in lines:
        assert {"severity", "message", "role", "correlation_id"} <= line.keys(), line
        assert line["role"] == "public"
        assert line["message"].replace("_", "").isalnum() and line["message"].islower(), line
    # The fixture's readiness probe logged the first access line.
    access = [line for line in lines if line["message"] == "http_request"]
    assert len(access) == 3
    health, missing = access[1:]
    assert health | {"duration_ms": 0} == health | {
        "severity": "INFO",
        "method": "GET",
        "path": "/health",
        "status": 200,
        "correlation_id": "corr-1",
        "duration_ms": 0,
        "logging.googleapis.com/trace": f"projects/demo-project/traces/{TRACE}",
    }
    assert isinstance(health["duration_ms"], float | int)
    assert missing["status"] == 404 and missing["severity"] == "WARNING"
    assert missing["path"] == "<unmatched>" and "exc_info" not in missing
    assert (
        "5511999990000" not in output and "hunter2" not in output and "nothing-here" not in output
    )
    assert "Traceback" not in output
