"""The private route table: health and the Cloud Tasks targets under /tasks, one per task
kind of the catalog (app/tasks/catalog.py).

Each /tasks route authenticates its OIDC token itself, so an unknown path is a 404
before any authentication runs.
"""

from starlette.routing import Route

from app.http.health import health, ready
from app.http.tasks import HANDLERS
from app.tasks.catalog import CATALOG

routes = [
    Route("/health", health, methods=["GET"]),
    Route("/ready", ready, methods=["GET"]),
    *(Route(kind.path, HANDLERS[kind], methods=["POST"]) for kind in CATALOG),
]
