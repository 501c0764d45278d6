"""A guest's voice note as words: its audio fetched from the inn's provider into memory,
then transcribed by the model. None whenever that cannot be done (no model configured, a
note too large or too long, a failed transcription): the guest is then asked to write."""

from __future__ import annotations

import asyncio
from typing import Any

from app.conversations.model import Services
from app.inventory.properties import Property
from app.llm.transcribe import transcribe
from app.messaging.media import Audio, MediaRefused, evolution_audio, meta_audio
from app.pii import PiiKeys

# Fetching the audio, within the conversation's lease with the transcription after it.
DOWNLOAD_SECONDS = 20


async def transcript(
    services: Services, pii: PiiKeys, prop: Property, media: dict[str, Any] | None
) -> str | None:
    if services.model is None or services.graph is None or not isinstance(media, dict):
        return None
    try:
        async with asyncio.timeout(DOWNLOAD_SECONDS):
            audio = await _download(services, pii, prop, media)
    except (MediaRefused, TimeoutError):
        return None
    if audio is None:
        return None
    return await transcribe(services.model, audio.data, audio.mime_type)


async def _download(
    services: Services, pii: PiiKeys, prop: Property, media: dict[str, Any]
) -> Audio | None:
    assert services.graph is not None
    whatsapp = prop.settings.get("whatsapp") or {}
    if whatsapp.get("provider") == "evolution":
        api_key = pii.unseal(whatsapp["api_key_sealed"], "evolution:api_key")
        return await evolution_audio(
            services.graph,
            whatsapp["api_base"],
            whatsapp["instance"],
            api_key,
            media["id"],
            media["mime_type"],
        )
    token = services.settings.whatsapp_access_token
    if token is None:
        return None
    return await meta_audio(
        services.graph,
        services.settings.whatsapp_api_base,
        token.reveal(),
        media["id"],
        media["mime_type"],
    )
