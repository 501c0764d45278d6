"""A guest books on WhatsApp with every real part: signed Meta webhook → public app → local
Cloud Tasks → worker (OIDC) → Postgres → fake Stripe → fake Graph API."""

from __future__ import annotations

import datetime as dt
import re
import uuid

from app.dev.fake_graph import inbound_envelope
from app.dev.fake_stripe import event
from tests.e2e.conftest import Stack, calendar
from tests.support import eventually

GUEST = "5511999990000"


async def say(stack: Stack, text: str, sender: str = GUEST) -> str:
    """Post the guest's text as Meta would; returns its message id."""
    message_id = f"wamid.HBgN{uuid.uuid4().hex.upper()}=="
    response = await stack.post_whatsapp(
        inbound_envelope("pn-test-inn", sender, text, message_id=message_id)
    )
    assert response.status_code == 200, response.text
    return message_id


async def replies(stack: Stack, count: int, to: str = GUEST) -> list[str]:
    """Wait until ``count`` replies reached the guest; returns their texts."""

    async def sent() -> list[str]:
        texts = [m["text"] for m in stack.graph.sent if m["to"] == to]
        return texts if len(texts) >= count else []

    return await eventually(sent)


async def test_pt_guest_books_and_pays(stack: Stack) -> None:
    cal = await calendar(stack)
    checkout = cal.start + dt.timedelta(days=2)
    await say(stack, f"Oi, tem quarto de {cal.start:%d/%m/%Y} a {checkout:%d/%m/%Y}, 2 pessoas")
    quote = (await replies(stack, 1))[0]
    assert "1. Std" in quote and "R$ 600,00" in quote

    await say(stack, "quero o 1")
    link = (await replies(stack, 2))[1]
    url = re.search(r"https://checkout\.stripe\.com/c/pay/(cs_\w+)", link)
    assert url is not None

    session = stack.stripe.complete(url.group(1))
    assert (await stack.post_event(event("checkout.session.completed", session))).status_code == 200
    confirmation = (await replies(stack, 3))[2]
    async with stack.pool.acquire() as conn:
        code = await conn.fetchval("SELECT code FROM reservations")
    assert code in confirmation
