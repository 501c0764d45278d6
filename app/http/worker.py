"""The private route table: health and the Cloud Tasks targets under /tasks.

Each /tasks route authenticates its OIDC token itself, so an unknown path is a 404
before any authentication runs.
"""

from starlette.routing import Route

from app.http import tasks
from app.http.health import health, ready

routes = [
    Route("/health", health, methods=["GET"]),
    Route("/ready", ready, methods=["GET"]),
    Route("/tasks/stripe/event", tasks.stripe_event, methods=["POST"]),
    Route("/tasks/holds/expire", tasks.hold_expire, methods=["POST"]),
    Route("/tasks/holds/sweep", tasks.holds_sweep, methods=["POST"]),
    Route("/tasks/outbox/relay", tasks.outbox_relay, methods=["POST"]),
    Route("/tasks/whatsapp/message", tasks.whatsapp_message, methods=["POST"]),
    Route("/tasks/whatsapp/send", tasks.whatsapp_send, methods=["POST"]),
    Route("/tasks/conversations/notify", tasks.conversation_notify, methods=["POST"]),
    Route("/tasks/staff/notify", tasks.staff_notify, methods=["POST"]),
]
