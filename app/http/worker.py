"""The private route table: health and the Cloud Tasks targets under /tasks."""

from starlette.routing import Route

from app.http.health import health, ready

routes = [
    Route("/health", health, methods=["GET"]),
    Route("/ready", ready, methods=["GET"]),
]
