"""The worker's /tasks routes are tested against the full local stack."""

from tests.e2e.conftest import stack  # noqa: F401
