"""A local stand-in for the Stripe API, speaking its wire format.

Requests arrive form-encoded (``metadata[hold_id]=…``) with ``Authorization: Bearer
sk_…`` and an optional ``Idempotency-Key``; answers are Stripe-shaped JSON objects
and errors. What we use is implemented: Checkout Sessions (create with Stripe's
``expires_at`` window, retrieve), refunds, and idempotency (same key and parameters →
the same answer; same key, other parameters → 400 ``idempotency_error``). Test and
dev controls live under ``/_dev``: complete or expire a session as the customer
would, and make the next calls fail.

The completed session carries a customer's name and e-mail, as Stripe's does: tests
check that neither ever reaches a log, a task body or the database.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
import time
import uuid
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
_INT_FIELDS = {"expires_at", "unit_amount", "quantity", "amount"}


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


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


@dataclass
class FakeStripe:
    port: int
    api_key: str
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0  # answer this many API calls with a 500
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
                Route("/_dev/checkout/sessions/{id}/complete", self._complete, methods=["POST"]),
                Route("/_dev/checkout/sessions/{id}/expire", self._expire, methods=["POST"]),
            ]
        )

    async def start(self) -> None:
        self._stop = await start_in_loop(self.app(), self.port, self.bind)

    async def stop(self) -> None:
        if self._stop is not None:
            await self._stop()

    # ---- API ---------------------------------------------------------------------

    async def _api(self, request: Request, create: Any) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "invalid_request_error", "Invalid API Key provided")
        if self.fail_next > 0:
            self.fail_next -= 1
            return _error(500, "api_error", "Something went wrong on Stripe's end.")
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
        def create(params: dict[str, Any]) -> JSONResponse:
            intent = params.get("payment_intent")
            paid = [s for s in self.sessions.values() if s["payment_intent"] == intent]
            if not paid:
                return _error(400, "invalid_request_error", "No such payment_intent")
            refund = {
                "id": f"re_{uuid.uuid4().hex[:24]}",
                "object": "refund",
                "payment_intent": intent,
                "amount": paid[0]["amount_total"],
                "currency": paid[0]["currency"],
                "status": "succeeded",
            }
            self.refunds.append(refund)
            return JSONResponse(refund)

        return await self._api(request, create)

    # ---- controls --------------------------------------------------------------------

    def complete(self, session_id: str, payment_status: str = "paid") -> dict[str, Any]:
        """The customer finished Checkout: the session as the completed event carries it."""
        session = self.sessions[session_id]
        session.update(
            status="complete",
            payment_status=payment_status,
            payment_intent=session["payment_intent"] or f"pi_{uuid.uuid4().hex[:24]}",
            customer_details={**CUSTOMER, "address": {"country": "BR"}, "phone": None},
        )
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


def event(event_type: str, session: dict[str, Any]) -> bytes:
    """A Stripe event envelope around a session, as the webhook receives it."""
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
