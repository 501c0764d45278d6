"""The console in a real browser (issue 21): Playwright driving Debian's Chromium through
the real stack. A staff member logs in with the code the fake Graph received, sees today's
arrival, blocks two nights and watches the cells change, cancels a reservation and sees
its refund, and hands a conversation back to the bot.

With HOTELLY_SCREENSHOTS=<dir> (``make screenshots``) each page is also saved there at a
phone's and a desktop's width.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from app.dev.fake_stripe import event
from app.inventory.property_file import CancellationTier
from app.messaging.credentials import store_staff_numbers
from app.pii import pii_keys
from app.settings import Secret
from tests.e2e.conftest import Stack, running_stack
from tests.e2e.test_console import STAFF, STAFF_WRITTEN, code_sent
from tests.e2e.test_whatsapp_conversations import ask, settled
from tests.e2e.test_whatsapp_understanding import today_at_the_inn
from tests.inventory.conftest import make_calendar
from tests.support import eventually

CHROMIUM = "/usr/bin/chromium"
# As root, without a screen, on a machine whose network is closed (env: python-svc).
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTHS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}
SHOTS = os.environ.get("HOTELLY_SCREENSHOTS")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def shot(page: Page, name: str) -> None:
    """The page at both widths, when screenshots are asked for."""
    if not SHOTS:
        return
    await asyncio.to_thread(Path(SHOTS).mkdir, parents=True, exist_ok=True)
    for width, size in WIDTHS.items():
        await page.set_viewport_size(size)
        await page.screenshot(path=str(Path(SHOTS) / f"{name}-{width}.png"), full_page=True)
    await page.set_viewport_size(WIDTHS["phone"])


async def booked(stack: Stack, guest: str, checkin: dt.date, nights: int) -> str:
    """A guest's paid reservation through WhatsApp and the fake Stripe; its code."""
    checkout = checkin + dt.timedelta(days=nights)
    await ask(stack, guest, f"de {checkin:%d/%m/%Y} a {checkout:%d/%m/%Y}, 2 pessoas")
    link = await ask(stack, guest, "quero o 1")
    session = stack.stripe.complete(link.split("/pay/")[1].split()[0])
    assert (await stack.post_event(event("checkout.session.completed", session))).status_code == 200

    async def code() -> str | None:
        return await stack.pool.fetchval("SELECT code FROM reservations ORDER BY created_at DESC")

    return str(await eventually(code))


async def test_a_staff_member_runs_the_day_from_the_console(db_url: str, browser: Browser) -> None:
    settings = {"env": "dev", "console_pepper": Secret("console-pepper-test")}
    async with running_stack(db_url, **settings) as stack:
        today = today_at_the_inn()
        async with stack.pool.acquire() as conn:
            cal = await make_calendar(conn, [("std", 2, 3, 30000)], start=today, days=40)
            await store_staff_numbers(conn, cal.property.id, (STAFF,), pii_keys(stack.settings))
            await conn.execute(
                "UPDATE properties SET settings = jsonb_set(settings, '{whatsapp,templates}',"
                ' \'{"login_code": {"pt": "hotelly_login_code"}}\')'
            )
            tier = CancellationTier(days_before=0, refund_percent=100)
            await conn.execute(
                "INSERT INTO cancellation_tiers (property_id, days_before, refund_percent)"
                " VALUES ($1, $2, $3)",
                cal.property.id,
                tier.days_before,
                tier.refund_percent,
            )
        arriving = await booked(stack, "5511970005001", today, 2)
        later = await booked(stack, "5511970005002", today + dt.timedelta(days=10), 2)
        handed = await ask(stack, "5511970005003", "quero falar com uma pessoa")
        assert "alguém da pousada" in handed, handed
        await settled(stack)

        page = await browser.new_page(viewport=WIDTHS["phone"], locale="pt-BR")
        base = stack.public
        await page.goto(f"{base}/console/login")
        await shot(page, "login")
        await page.fill("input[name=phone]", STAFF_WRITTEN)
        await page.click("text=Receber código")
        await page.wait_for_selector("input[name=code]")
        await page.fill("input[name=code]", await code_sent(stack, STAFF))
        await page.click("text=Entrar")
        await page.wait_for_url(f"{base}/console/test-inn/hoje")
        assert arriving in await page.inner_text("main")
        await shot(page, "hoje")

        # Block two nights: the command page polls until the worker has done it.
        first = today + dt.timedelta(days=3)
        await page.goto(f"{base}/console/test-inn/calendario")
        cell = f"td[data-room=std][data-date='{first.isoformat()}']"
        assert await page.get_attribute(cell, "data-blocked") == "0"
        await page.click(cell)  # the first night, then the last: the form has the range
        await page.click(
            f"td[data-room=std][data-date='{(first + dt.timedelta(days=1)).isoformat()}']"
        )
        assert await page.input_value("input[name=checkin]") == first.isoformat()
        checkout = (first + dt.timedelta(days=2)).isoformat()
        assert await page.input_value("input[name=checkout]") == checkout
        await page.click("button[value='block.add']")
        await page.wait_for_selector("text=Feito", timeout=15_000)
        await page.goto(f"{base}/console/test-inn/calendario")
        for night in (first, first + dt.timedelta(days=1)):
            selector = f"td[data-room=std][data-date='{night.isoformat()}']"
            assert await page.get_attribute(selector, "data-blocked") == "1"
            assert await page.get_attribute(selector, "data-free") == "2"
        await shot(page, "calendario")

        # Cancel the later stay: the refund appears in its history.
        await page.goto(f"{base}/console/test-inn/reservas")
        await shot(page, "reservas")
        await page.click(f"text={later}")
        assert "reembolso agora é de 100%" in await page.inner_text("main")
        await page.click("text=Cancelar a reserva")
        await page.wait_for_selector("text=Feito", timeout=15_000)

        async def refunded() -> bool:
            status = await stack.pool.fetchval("SELECT status FROM refunds")
            return status == "succeeded"

        await eventually(refunded, within=20)
        await page.goto(f"{base}/console/test-inn/reservas/{later}")
        history = await page.inner_text("main")
        assert "cancelada" in history and re.search(r"R\$ 600,00\s+succeeded", history), history
        await shot(page, "reserva")

        # The guest who asked for a person is handed back to the bot.
        await page.goto(f"{base}/console/test-inn/conversas")
        await page.click("main ul a")
        assert "quero falar com uma pessoa" in await page.inner_text("main")
        await shot(page, "conversas")
        await page.click("text=Devolver ao robô")
        await page.wait_for_selector("text=Feito", timeout=15_000)
        state = await stack.pool.fetchval(
            "SELECT state FROM conversations c JOIN contacts k ON k.contact_hash = c.contact_hash"
            " WHERE c.contact_hash = $1",
            pii_keys(stack.settings).contact_hash("5511970005003"),
        )
        assert state == "collecting"

        await page.goto(f"{base}/console/test-inn/canais")
        await shot(page, "canais")
        await page.close()
