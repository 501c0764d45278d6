"""Voice notes (issue 19), end to end: Meta's media id or the Evolution instance's base64
endpoint → the audio in memory, capped → the model's transcript → the conversation, as
if the guest had typed it. Without a model, or for a note too large or too long, the guest
is asked once to write instead (never "not understood", never a hand-off)."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import AsyncIterator

import orjson
import pytest
from pythonjsonlogger.orjson import OrjsonFormatter

from app.conversations import replies
from app.dev.fake_evolution import upsert_audio_event
from app.dev.fake_graph import FakeGraph, audio_envelope
from app.dev.fake_model import FakeModel
from app.dev.postgres import free_port
from tests.audio import ogg_opus
from tests.e2e.conftest import (
    GRAPH_TOKEN,
    INSTANCE,
    Stack,
    evolution_gateway,
    rows_as_text,
    running_stack,
)
from tests.e2e.test_whatsapp_conversations import (
    PHONE_NUMBER_ID,
    conversation,
    day,
    sent_to,
    settled,
)
from tests.e2e.test_whatsapp_conversations import (
    replies as replies_to,
)
from tests.e2e.test_whatsapp_evolution import GUEST, post
from tests.e2e.test_whatsapp_evolution import replies as gateway_replies
from tests.e2e.test_whatsapp_model import model_settings, open_calendar
from tests.inventory.conftest import START

OGG = "audio/ogg; codecs=opus"
WRITE_INSTEAD = replies.render("voice_write_instead", "pt")


@pytest.fixture
async def model_stack(db_url: str, model: FakeModel) -> AsyncIterator[Stack]:
    async with running_stack(db_url, **model_settings(model)) as running:
        yield running


async def send_voice(stack: Stack, guest: str, audio: bytes) -> str:
    """Post a voice note as Meta would; returns the one new reply it gets."""
    before = len(sent_to(stack, guest))
    media_id = stack.graph.add_media(audio, OGG)
    response = await stack.post_whatsapp(audio_envelope(PHONE_NUMBER_ID, guest, media_id))
    assert response.status_code == 200, response.text
    return (await replies_to(stack, guest, before + 1))[before]


def transcriptions(fake: FakeModel) -> int:
    return sum("inlineData" in str(r) for r in fake.requests)


async def test_a_meta_voice_note_is_transcribed_and_quoted(
    model_stack: Stack, model: FakeModel
) -> None:
    today = await open_calendar(model_stack)
    checkin, checkout = today + dt.timedelta(days=4), today + dt.timedelta(days=6)
    audio = ogg_opus(6.0)
    model.reply_transcript(audio, f"Oi, tem quarto de {day(checkin)} a {day(checkout)} para 2?")
    quote = await send_voice(model_stack, "5548991239001", audio)
    assert quote.startswith(f"Para 2 pessoas, de {day(checkin)} a {day(checkout)} (2 noites):")
    assert transcriptions(model) == 1 and len(model.requests) == 1  # the rules read the rest


async def test_an_evolution_voice_note_is_transcribed_and_quoted(
    model_stack: Stack, model: FakeModel
) -> None:
    checkin, checkout = START, START + dt.timedelta(days=2)
    audio = ogg_opus(5.0)
    message_id = uuid.uuid4().hex[:20].upper()
    model.reply_transcript(audio, f"Olá, quarto de {day(checkin)} a {day(checkout)}, 2 pessoas")
    async with evolution_gateway(model_stack) as gateway:
        gateway.add_media(message_id, audio, OGG)
        event = upsert_audio_event(INSTANCE, GUEST, message_id=message_id, seconds=5)
        assert await post(model_stack, event) == 200
        (quote,) = await gateway_replies(gateway, 1)
    assert quote.startswith(f"Para 2 pessoas, de {day(checkin)} a {day(checkout)} (2 noites):")
    assert transcriptions(model) == 1


async def test_the_access_token_goes_to_no_other_host(db_url: str, model: FakeModel) -> None:
    """A media URL off Graph's hosts is not fetched with the token (nor at all)."""
    elsewhere = FakeGraph(free_port(), access_token=GRAPH_TOKEN)
    await elsewhere.start()
    try:
        async with running_stack(db_url, **model_settings(model)) as stack:
            await open_calendar(stack)
            audio = ogg_opus(3.0)
            model.reply_transcript(audio, "quero reservar")
            foreign = f"http://127.0.0.1:{elsewhere.port}/_media/x"
            media_id = stack.graph.add_media(audio, OGG, url=foreign)
            guest = "5548991239007"
            response = await stack.post_whatsapp(audio_envelope(PHONE_NUMBER_ID, guest, media_id))
            assert response.status_code == 200
            assert (await replies_to(stack, guest, 1)) == [WRITE_INSTEAD]
            assert stack.graph.media_requests == [(f"/v21.0/{media_id}", True)]
    finally:
        await elsewhere.stop()
    assert elsewhere.media_requests == []
    assert transcriptions(model) == 0


@pytest.mark.parametrize(
    "audio",
    [
        pytest.param(ogg_opus(8.0, size=20 * 1024 * 1024), id="20-MiB"),
        pytest.param(ogg_opus(600.0), id="10-minutes"),
    ],
)
async def test_a_note_too_large_or_too_long_gets_the_write_instead_reply(
    model_stack: Stack, model: FakeModel, audio: bytes
) -> None:
    await open_calendar(model_stack)
    model.reply_transcript(audio, "de 10/12 a 12/12 para 2")
    guest = "5548991239003"
    assert await send_voice(model_stack, guest, audio) == WRITE_INSTEAD
    assert transcriptions(model) == 0
    context = (await conversation(model_stack))["context"]
    assert "misunderstood" not in context


async def test_without_a_model_a_voice_note_gets_the_write_instead_reply(stack: Stack) -> None:
    await open_calendar(stack)
    guest = "5548991239004"
    for _ in range(3):  # never "not understood", never handed to a person
        assert await send_voice(stack, guest, ogg_opus(3.0)) == WRITE_INSTEAD
    assert (await conversation(stack))["state"] != "human"


async def test_a_failed_transcription_gets_the_write_instead_reply(
    model_stack: Stack, model: FakeModel
) -> None:
    await open_calendar(model_stack)
    model.fail_with(500)
    assert await send_voice(model_stack, "5548991239005", ogg_opus(3.0)) == WRITE_INSTEAD


async def test_audio_and_transcript_appear_in_no_log_task_or_clear_row(
    model_stack: Stack,
    model: FakeModel,
    all_logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    today = await open_calendar(model_stack)
    checkin = today + dt.timedelta(days=3)
    audio = ogg_opus(4.0)
    transcript = f"Aqui é a Joana Canary, quero de {day(checkin)} a {day(checkin, 2)} para 2"
    model.reply_transcript(audio, transcript)
    guest = "5548991239006"
    quote = await send_voice(model_stack, guest, audio)
    assert quote.startswith("Para 2 pessoas"), quote
    await settled(model_stack)

    formatter = OrjsonFormatter("{levelname}{message}{name}", style="{")
    logged = " ".join(f"{formatter.format(r)} {vars(r)!r}" for r in all_logs.records)
    assert "media_download" in logged and "model_call" in logged
    out, err = capfd.readouterr()
    bodies = " ".join(t.http_request.body.decode() for t in model_stack.emulator.tasks.values())
    rows = await rows_as_text(model_stack)
    encoded = base64.b64encode(audio).decode()
    for where, text in {"logs": logged, "output": out + err, "tasks": bodies, "rows": rows}.items():
        for secret in ("Joana Canary", transcript, encoded[:40], encoded[-40:], guest, "OpusHead"):
            assert secret not in text, (where, secret[:20])
    # The transcript is kept, sealed like a typed message's text.
    sealed = await model_stack.pool.fetchval(
        "SELECT body_encrypted FROM messages WHERE direction = 'in'"
    )
    assert sealed is not None and transcript.encode() not in bytes(sealed)
    assert orjson.dumps(transcript).decode() not in rows
