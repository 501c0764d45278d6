"""A language model where the rules give up (issue 19), end to end: the real google-genai
SDK in the worker talks to the fake Vertex server; everything else is the real stack.

The model is asked only when the rules cannot fill what the conversation needs, its
reading is validated field by field, and a slow or failing model leaves the rules' answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.dev.fake_model import FakeModel
from tests.e2e.conftest import Stack, running_stack
from tests.e2e.test_whatsapp_conversations import ask, conversation, day
from tests.e2e.test_whatsapp_understanding import today_at_the_inn
from tests.inventory.conftest import make_calendar

MODEL = "gemini-2.5-flash"
# Free-form: the rules read the party (2) and the nights (3), but no date.
FREE_FORM = (
    "Boa tarde! Eu e minha esposa queremos comemorar nosso aniversário de casamento aí, "
    "chegando no comecinho do mês que vem e ficando umas três noites"
)


def model_settings(fake: FakeModel, **more: Any) -> dict[str, Any]:
    return {
        "env": "dev",
        "understanding_model": MODEL,
        "understanding_project": "hotelly-test",
        "understanding_base_url": fake.base_url,
        **more,
    }


@pytest.fixture
async def model_stack(db_url: str, model: FakeModel) -> AsyncIterator[Stack]:
    async with running_stack(db_url, **model_settings(model)) as running:
        yield running


async def open_calendar(stack: Stack) -> dt.date:
    """One room type 'std' (2 guests, 2 rooms, R$300) from today on; returns today."""
    today = today_at_the_inn()
    async with stack.pool.acquire() as conn:
        await make_calendar(conn, [("std", 2, 2, 30000)], start=today, days=40)
    return today


def readings(fake: FakeModel) -> list[dict[str, Any]]:
    """The reading requests the fake received (not transcriptions)."""
    return [r for r in fake.requests if "inlineData" not in str(r)]


async def test_the_model_reads_what_the_rules_cannot_once_and_the_quote_follows(
    model_stack: Stack, model: FakeModel, all_logs: pytest.LogCaptureFixture
) -> None:
    today = await open_calendar(model_stack)
    checkin, checkout = today + dt.timedelta(days=10), today + dt.timedelta(days=13)
    model.reply_reading(
        "aniversário de casamento",
        {
            "intent": "availability",
            "language": "pt",
            "checkin": checkin.isoformat(),
            "checkout": checkout.isoformat(),
            "adults": 2,
        },
    )
    planted = " Meu e-mail é joana.canary@example.com, CPF 123.456.789-09, fone +55 48 99123-4567"
    quote = await ask(model_stack, "5548991234567", FREE_FORM + planted)
    assert quote.startswith(f"Para 2 pessoas, de {day(checkin)} a {day(checkout)} (3 noites):")
    assert (await conversation(model_stack))["state"] == "quoted"
    asked = readings(model)
    assert len(asked) == 1
    prompt = str(asked[0])
    assert "aniversário de casamento" in prompt
    for secret in (
        "joana.canary@example.com",
        "123.456.789-09",
        "12345678909",
        "+55 48 99123-4567",
        "99123-4567",
        "5548991234567",
        "48991234567",
    ):
        assert secret not in prompt, secret
    calls = [r for r in all_logs.records if r.getMessage() == "model_call"]
    assert [(c.purpose, c.outcome) for c in calls] == [("reading", "ok")]  # type: ignore[attr-defined]
    assert calls[0].prompt_tokens > 0 and calls[0].model == MODEL  # type: ignore[attr-defined]
    logged = "".join(r.getMessage() + str(r.__dict__) for r in all_logs.records)
    for secret in ("joana.canary", "123.456.789-09", "99123-4567", "aniversário", "comecinho"):
        assert secret not in logged, secret


@pytest.mark.parametrize(
    "reading",
    [
        pytest.param({"checkin": -3, "checkout": 2, "adults": 2}, id="past-checkin"),
        pytest.param({"checkin": 12, "checkout": 10, "adults": 2}, id="checkout-before"),
        pytest.param({"checkin": 10, "checkout": 12, "adults": 40}, id="forty-guests"),
        pytest.param({"checkin": 700, "checkout": 703, "adults": 2}, id="beyond-18-months"),
    ],
)
async def test_an_invalid_reading_is_discarded_field_by_field(
    model_stack: Stack, model: FakeModel, reading: dict[str, int]
) -> None:
    """What fails validation is not used: no quote for those dates, not that party."""
    today = await open_calendar(model_stack)
    registered: dict[str, Any] = {"intent": "availability", "adults": reading["adults"]}
    for field in ("checkin", "checkout"):
        registered[field] = (today + dt.timedelta(days=reading[field])).isoformat()
    model.reply_reading("aniversário de casamento", registered)
    answer = await ask(model_stack, "5548991230001", FREE_FORM)
    assert len(readings(model)) == 1
    assert "40" not in answer
    stay = (await conversation(model_stack))["context"].get("stay") or {}
    if reading["adults"] == 40:  # the dates hold and are used; the party is the rules' 2
        checkin, checkout = (dt.date.fromisoformat(registered[f]) for f in ("checkin", "checkout"))
        assert answer.startswith(f"Para 2 pessoas, de {day(checkin)} a {day(checkout)}"), answer
    else:
        assert "noites):" not in answer, answer  # no quote
        assert (await conversation(model_stack))["state"] != "quoted"
        assert "checkin" not in stay and "checkout" not in stay


async def test_a_slow_model_falls_back_to_the_rules(db_url: str, model: FakeModel) -> None:
    model.delay = 5.0
    async with running_stack(
        db_url, **model_settings(model, understanding_timeout_seconds=0.5)
    ) as stack:
        await open_calendar(stack)
        model.reply_reading("aniversário", {"intent": "availability", "adults": 2})
        answer = await ask(stack, "5548991230002", FREE_FORM)
        assert "noites):" not in answer, answer  # no quote
        assert (await conversation(stack))["state"] != "quoted"


async def test_a_failing_model_falls_back_to_the_rules(
    model_stack: Stack, model: FakeModel
) -> None:
    await open_calendar(model_stack)
    model.fail_with(500)
    answer = await ask(model_stack, "5548991230003", FREE_FORM)
    assert "noites):" not in answer, answer  # no quote


async def test_the_model_is_never_asked_when_the_rules_suffice(
    model_stack: Stack, model: FakeModel
) -> None:
    today = await open_calendar(model_stack)
    guest = "5548991230004"
    assert (await ask(model_stack, guest, "oi")).startswith("Olá")
    checkin, checkout = today + dt.timedelta(days=5), today + dt.timedelta(days=7)
    quote = await ask(model_stack, guest, f"tem quarto de {day(checkin)} a {day(checkout)}?")
    assert "Quantas pessoas" in quote or quote.startswith("Para"), quote
    await ask(model_stack, guest, "somos 2")
    link = await ask(model_stack, guest, "quero o 1")
    assert "checkout.stripe.com" in link
    assert model.requests == []


MONTHS = "janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro dezembro"


async def test_an_answer_that_does_not_settle_the_question_is_read_by_the_model(
    model_stack: Stack, model: FakeModel
) -> None:
    """The rules ask which of two readings; the guest's answer picks none the rules can
    see; the model, told what was asked, reads it."""
    today = today_at_the_inn()
    first = (today.replace(day=1) + dt.timedelta(days=32)).replace(day=10)
    async with model_stack.pool.acquire() as conn:
        await make_calendar(
            conn, [("std", 2, 2, 30000)], start=today, days=(first - today).days + 10
        )
    month = MONTHS.split()[first.month - 1]
    question = await ask(
        model_stack, "5548991230005", f"dia 10 ou 11 de {month} até o 13, para 2 pessoas"
    )
    assert "10" in question and "11" in question and "noites):" not in question, question
    assert readings(model) == []  # the rules' own question: nothing for the model
    second, checkout = first + dt.timedelta(days=1), first + dt.timedelta(days=3)
    model.reply_reading(
        "naquele outro dia",
        {"intent": "availability", "checkin": second.isoformat(), "checkout": checkout.isoformat()},
    )
    quote = await ask(
        model_stack, "5548991230005", "chegamos naquele outro dia que falei, não no primeiro"
    )
    assert quote.startswith(f"Para 2 pessoas, de {day(second)} a {day(checkout)} (2 noites):")
    [asked] = readings(model)
    assert "The inn asked which of" in str(asked)
