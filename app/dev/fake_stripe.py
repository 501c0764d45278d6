"""A local stand-in for the Stripe API, speaking its wire format.

Requests arrive form-encoded (``metadata[hold_id]=…``) with ``Authorization: Bearer
sk_…`` and an optional ``Idempotency-Key``; answers are Stripe-shaped JSON objects
and errors. What we use is implemented: Checkout Sessions (create with Stripe's
``expires_at`` window, retrieve), refunds (several partial ones per charge, never more
than is left; listed by payment intent), and idempotency (same key and parameters → the
same answer; same key, other parameters → 400 ``idempotency_error``). Test and dev
controls live under ``/_dev``: complete or expire a session as the customer would (a paid
session gets its charge), refund from "the dashboard", open and close a dispute — each
answering the event Stripe would send — and make the next calls fail. ``on_refund``, when
set, runs after a refund is made and before the API answers (a webhook that overtakes
the API's answer).

The Events API lists the events the fake made (``new_event``, and the ``/_dev`` routes
that answer one), newest first, filtered and paged as Stripe does. Whoever delivers an
event to the webhook tells the fake how the webhook answered (``delivered``, or ``POST
/_dev/events/<id>/delivery?status=503``): until one delivery succeeds the event counts
as not delivered (``delivery_success=false``), as a real one pending or failing is.

The completed session and its charge carry a customer's name and e-mail, as Stripe's do:
tests check that neither ever reaches a log, a task body or the database.
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import hashlib
import operator
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.dev.servers import run_until_signalled, start_in_loop
from app.logging import configure_logging

CUSTOMER = {"email": "maria.silva.canary@example.com", "name": "Maria Canary Silva"}
_INT_FIELDS = {"expires_at", "unit_amount", "quantity", "amount", "limit"}
# Stripe's page size: 10 by default, at most 100.
_LIST_LIMITS = (10, 100)
# The Events API's bounds on ``created``.
_BOUNDS = {
    "eq": operator.eq,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def parse_form(body: bytes) -> dict[str, Any]:
    """Stripe's nested form encoding (``a[b][0][c]=v``) into dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body.decode(), keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = int(value) if parts[-1] in _INT_FIELDS and value.isdigit() else value
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_listify(node[k]) for k in sorted(node, key=int)]
    return {k: _listify(v) for k, v in node.items()}


def _error(
    status: int, kind: str, message: str, code: str | None = None, param: str | None = None
) -> JSONResponse:
    error: dict[str, Any] = {"type": kind, "message": message}
    if code is not None:
        error["code"] = code
    if param is not None:
        error["param"] = param
    return JSONResponse({"error": error}, status_code=status)


@dataclass
class FakeStripe:
    port: int
    api_key: str
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    # Charges by payment intent: a paid session's.
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    disputes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Every event made, oldest first, and the ids of those a delivery reached.
    events: list[dict[str, Any]] = field(default_factory=list)
    delivered_ids: set[str] = field(default_factory=set)
    fail_next: int = 0  # answer this many API calls with a 500
    # Run with each new refund after it is made and before the API answers.
    on_refund: Callable[[dict[str, Any]], Awaitable[None]] | None = None
    bind: str = "127.0.0.1"
    _idempotency: dict[str, tuple[str, JSONResponse]] = field(default_factory=dict)
    _stop: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/checkout/sessions", self._create_session, methods=["POST"]),
                Route("/v1/checkout/sessions/{id}", self._get_session, methods=["GET"]),
                Route("/v1/refunds", self._create_refund, methods=["POST"]),
                Route("/v1/refunds", self._list_refunds, methods=["GET"]),
                Route("/v1/events", self._list_events, methods=["GET"]),
                Route("/_dev/events/{id}/delivery", self._delivery, methods=["POST"]),
                Route("/_dev/checkout/sessions/{id}/complete", self._complete, methods=["POST"]),
                Route("/_dev/checkout/sessions/{id}/expire", self._expire, methods=["POST"]),
                Route("/_dev/payment_intents/{pi}/refund", self._dev_refund, methods=["POST"]),
                Route("/_dev/payment_intents/{pi}/dispute", self._dev_dispute, methods=["POST"]),
                Route(
                    "/_dev/payment_intents/{pi}/dispute/close",
                    self._dev_close_dispute,
                    methods=["POST"],
                ),
            ]
        )

    async def start(self) -> None:
        self._stop = await start_in_loop(self.app(), self.port, self.bind)

    async def stop(self) -> None:
        if self._stop is not None:
            await self._stop()

    # ---- API ---------------------------------------------------------------------

    def _guard(self, request: Request) -> JSONResponse | None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "invalid_request_error", "Invalid API Key provided")
        if self.fail_next > 0:
            self.fail_next -= 1
            return _error(500, "api_error", "Something went wrong on Stripe's end.")
        return None

    async def _api(self, request: Request, create: Any) -> JSONResponse:
        refused = self._guard(request)
        if refused is not None:
            return refused
        body = await request.body()
        params = parse_form(body)
        key = request.headers.get("idempotency-key")
        if key is None:
            return create(params)
        digest = hashlib.sha256(request.url.path.encode() + body).hexdigest()
        seen = self._idempotency.get(key)
        if seen is not None:
            if seen[0] != digest:
                return _error(
                    400,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters",
                )
            return seen[1]
        response = create(params)
        if response.status_code < 500:
            self._idempotency[key] = (digest, response)
        return response

    async def _create_session(self, request: Request) -> JSONResponse:
        def create(params: dict[str, Any]) -> JSONResponse:
            now = int(time.time())
            expires_at = params.get("expires_at", now + 24 * 3600)
            if not isinstance(expires_at, int) or not now + 1800 <= expires_at <= now + 86400:
                return _error(
                    400,
                    "invalid_request_error",
                    "The `expires_at` timestamp must be at least 30 minutes and "
                    "less than 24 hours from Checkout Session creation.",
                )
            items = params.get("line_items") or []
            amount = sum(i["price_data"]["unit_amount"] * i.get("quantity", 1) for i in items)
            session_id = f"cs_test_{uuid.uuid4().hex}"
            session = {
                "id": session_id,
                "object": "checkout.session",
                "amount_total": amount,
                "currency": items[0]["price_data"]["currency"] if items else "brl",
                "client_reference_id": params.get("client_reference_id"),
                "created": now,
                "customer_details": None,
                "expires_at": expires_at,
                "livemode": False,
                "metadata": params.get("metadata", {}),
                "mode": params.get("mode"),
                "payment_intent": None,
                "payment_method_types": params.get("payment_method_types", ["card"]),
                "payment_status": "unpaid",
                "status": "open",
                "success_url": params.get("success_url"),
                "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            }
            self.sessions[session_id] = session
            return JSONResponse(session)

        return await self._api(request, create)

    async def _get_session(self, request: Request) -> JSONResponse:
        session = self.sessions.get(request.path_params["id"])
        if session is None:
            return _error(404, "invalid_request_error", "No such checkout.session")
        return JSONResponse(session)

    async def _create_refund(self, request: Request) -> JSONResponse:
        made: list[dict[str, Any]] = []

        def create(params: dict[str, Any]) -> JSONResponse:
            intent = params.get("payment_intent")
            if not isinstance(intent, str) or intent not in self.charges:
                return _error(
                    400,
                    "invalid_request_error",
                    f"No such payment_intent: '{intent}'",
                    code="resource_missing",
                    param="payment_intent",
                )
            metadata = params.get("metadata") or {}
            try:
                refund = self.refund(intent, params.get("amount"), metadata)
            except RefundRefused as exc:
                return _error(400, "invalid_request_error", str(exc), exc.code, "amount")
            made.append(refund)
            return JSONResponse(refund)

        response = await self._api(request, create)
        if made and self.on_refund is not None:  # a new refund, not a replay
            await self.on_refund(dict(made[0]))
        return response

    async def _list_refunds(self, request: Request) -> JSONResponse:
        refused = self._guard(request)
        if refused is not None:
            return refused
        intent = request.query_params.get("payment_intent")
        limit = int(request.query_params.get("limit", "10"))
        # Newest first, as Stripe lists them.
        found = [
            r for r in reversed(self.refunds) if intent is None or r["payment_intent"] == intent
        ]
        return JSONResponse(
            {
                "object": "list",
                "data": found[:limit],
                "has_more": len(found) > limit,
                "url": "/v1/refunds",
            }
        )

    async def _list_events(self, request: Request) -> JSONResponse:
        refused = self._guard(request)
        if refused is not None:
            return refused
        params = parse_form(request.url.query.encode())
        limit = params.get("limit", _LIST_LIMITS[0])
        if not isinstance(limit, int) or not 1 <= limit <= _LIST_LIMITS[1]:
            return _error(400, "invalid_request_error", "Invalid limit", param="limit")
        found = [
            self._listed(e)
            for e in reversed(self.events)  # newest first, as Stripe lists them
            if _event_matches(e, params, e["id"] in self.delivered_ids)
        ]
        after = params.get("starting_after")
        if after is not None:
            ids = [e["id"] for e in found]
            if after not in ids:
                return _error(400, "invalid_request_error", f"No such event: '{after}'")
            found = found[ids.index(after) + 1 :]
        return JSONResponse(
            {
                "object": "list",
                "data": found[:limit],
                "has_more": len(found) > limit,
                "url": "/v1/events",
            }
        )

    def _listed(self, made: dict[str, Any]) -> dict[str, Any]:
        return {**made, "pending_webhooks": 0 if made["id"] in self.delivered_ids else 1}

    async def _delivery(self, request: Request) -> JSONResponse:
        event_id = request.path_params["id"]
        if not any(e["id"] == event_id for e in self.events):
            return _error(404, "invalid_request_error", f"No such event: '{event_id}'")
        status = request.query_params.get("status", "")
        if not status.isdigit():
            return _error(400, "invalid_request_error", "status: the webhook's HTTP status")
        self.delivered(event_id, int(status))
        return JSONResponse({"id": event_id, "delivered": event_id in self.delivered_ids})

    # ---- events ----------------------------------------------------------------------

    def new_event(self, event_type: str, obj: dict[str, Any]) -> bytes:
        """The event Stripe makes about ``obj``, as the webhook receives it; listed by the
        Events API, not delivered until ``delivered`` says a delivery succeeded."""
        payload = event(event_type, obj)
        self.events.append(orjson.loads(payload))
        return payload

    def delivered(self, event_id: str, status: int) -> None:
        """A delivery of the event reached the webhook, which answered ``status``."""
        if 200 <= status < 300:
            self.delivered_ids.add(event_id)

    # ---- the money --------------------------------------------------------------------

    def refund(
        self, intent: str, amount: int | None = None, metadata: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Refund ``amount`` (default: what is left) of the intent's charge."""
        charge = self.charges[intent]
        left = charge["amount"] - charge["amount_refunded"]
        if left <= 0:
            raise RefundRefused(
                f"Charge {charge['id']} has already been refunded.", "charge_already_refunded"
            )
        amount = left if amount is None else amount
        if not isinstance(amount, int) or amount <= 0:
            raise RefundRefused("Invalid positive integer", "parameter_invalid_integer")
        if amount > left:
            raise RefundRefused(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                "amount_too_large",
            )
        refund = {
            "id": f"re_{uuid.uuid4().hex[:24]}",
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "created": int(time.time()),
            "currency": charge["currency"],
            "metadata": dict(metadata or {}),
            "payment_intent": intent,
            "reason": None,
            "status": "succeeded",
        }
        self.refunds.append(refund)
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        return refund

    def dispute(self, intent: str, reason: str = "fraudulent") -> dict[str, Any]:
        """The cardholder disputes the intent's charge (the Dispute, needing a response)."""
        charge = self.charges[intent]
        dispute = {
            "id": f"dp_{uuid.uuid4().hex[:24]}",
            "object": "dispute",
            "amount": charge["amount"],
            "charge": charge["id"],
            "created": int(time.time()),
            "currency": charge["currency"],
            "metadata": {},
            "payment_intent": intent,
            "reason": reason,
            "status": "needs_response",
        }
        self.disputes[dispute["id"]] = dispute
        return dict(dispute)

    def close_dispute(self, dispute_id: str, status: str = "lost") -> dict[str, Any]:
        dispute = self.disputes[dispute_id]
        dispute["status"] = status
        return dict(dispute)

    # ---- controls --------------------------------------------------------------------

    def complete(self, session_id: str, payment_status: str = "paid") -> dict[str, Any]:
        """The customer finished Checkout: the session as the completed event carries it
        (a paid one has its charge)."""
        session = self.sessions[session_id]
        session.update(
            status="complete",
            payment_status=payment_status,
            payment_intent=session["payment_intent"] or f"pi_{uuid.uuid4().hex[:24]}",
            customer_details={**CUSTOMER, "address": {"country": "BR"}, "phone": None},
        )
        intent = session["payment_intent"]
        if payment_status == "paid" and intent not in self.charges:
            self.charges[intent] = {
                "id": f"ch_{uuid.uuid4().hex[:24]}",
                "object": "charge",
                "amount": session["amount_total"],
                "amount_refunded": 0,
                # As Stripe's Charge does: the payer, which must reach no log or row.
                "billing_details": {**CUSTOMER, "address": {"country": "BR"}, "phone": None},
                "currency": session["currency"],
                "metadata": {},
                "paid": True,
                "payment_intent": intent,
                "receipt_email": CUSTOMER["email"],
                "refunded": False,
                "status": "succeeded",
            }
        return dict(session)

    async def _complete(self, request: Request) -> JSONResponse:
        session_id = request.path_params["id"]
        if session_id not in self.sessions:
            return _error(404, "invalid_request_error", "No such checkout.session")
        status = request.query_params.get("payment_status", "paid")
        return JSONResponse(self.complete(session_id, status))

    async def _expire(self, request: Request) -> JSONResponse:
        session = self.sessions.get(request.path_params["id"])
        if session is None:
            return _error(404, "invalid_request_error", "No such checkout.session")
        session["status"] = "expired"
        return JSONResponse(session)

    async def _dev_refund(self, request: Request) -> JSONResponse:
        """A refund made in Stripe's dashboard: the charge.refunded event to deliver."""
        intent = request.path_params["pi"]
        if intent not in self.charges:
            return _error(404, "invalid_request_error", f"No such payment_intent: '{intent}'")
        amount = request.query_params.get("amount")
        try:
            self.refund(intent, int(amount) if amount else None)
        except (RefundRefused, ValueError) as exc:
            return _error(400, "invalid_request_error", str(exc), getattr(exc, "code", None))
        made = self.new_event("charge.refunded", dict(self.charges[intent]))
        return JSONResponse(orjson.loads(made))

    async def _dev_dispute(self, request: Request) -> JSONResponse:
        """The cardholder disputes the charge: the charge.dispute.created event to deliver."""
        intent = request.path_params["pi"]
        if intent not in self.charges:
            return _error(404, "invalid_request_error", f"No such payment_intent: '{intent}'")
        dispute = self.dispute(intent, request.query_params.get("reason", "fraudulent"))
        return JSONResponse(orjson.loads(self.new_event("charge.dispute.created", dispute)))

    async def _dev_close_dispute(self, request: Request) -> JSONResponse:
        """The intent's latest dispute is decided: the charge.dispute.closed event."""
        intent = request.path_params["pi"]
        found = [d for d in self.disputes.values() if d["payment_intent"] == intent]
        if not found:
            return _error(404, "invalid_request_error", f"No dispute of '{intent}'")
        closed = self.close_dispute(found[-1]["id"], request.query_params.get("status", "lost"))
        return JSONResponse(orjson.loads(self.new_event("charge.dispute.closed", closed)))


class RefundRefused(Exception):
    """Stripe's 400 for a refund it will not make (the message and code are Stripe's)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def event(event_type: str, session: dict[str, Any]) -> bytes:
    """A Stripe event envelope around an object (a session, charge or dispute), as the
    webhook receives it (not listed by the Events API: ``FakeStripe.new_event`` is)."""
    return orjson.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "api_version": "2026-10-28",
            "created": int(time.time()),
            "livemode": False,
            "type": event_type,
            "data": {"object": session},
        }
    )


def _event_matches(made: dict[str, Any], params: dict[str, Any], delivered: bool) -> bool:
    """Whether an event passes the Events API's filters: ``delivery_success``, ``created``
    (a timestamp, or ``gt``/``gte``/``lt``/``lte`` bounds), ``type`` (``*`` wildcards) or
    ``types``."""
    success = params.get("delivery_success")
    if success is not None and (success == "true") != delivered:
        return False
    created = params.get("created")
    bounds = created if isinstance(created, dict) else {} if created is None else {"eq": created}
    for name, bound in bounds.items():
        if name in _BOUNDS and not _BOUNDS[name](made["created"], int(bound)):
            return False
    if "type" in params and not fnmatch.fnmatchcase(made["type"], params["type"]):
        return False
    return "types" not in params or made["type"] in params["types"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local fake Stripe API for make run")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--api-key", required=True)
    args = parser.parse_args(argv)
    configure_logging("fake-stripe")
    fake = FakeStripe(port=args.port, api_key=args.api_key, bind=args.host)
    asyncio.run(run_until_signalled(fake.start, fake.stop))


if __name__ == "__main__":
    main()
