"""A voice note's words, by the same model (audio in, text out).

The audio goes inline in the request and lives only in memory; the transcript is the
guest's words and is handled like a typed message (sealed, never logged).
"""

from __future__ import annotations

from google.genai import types

from app.llm.model import Model

INSTRUCTION = """\
Transcribe this voice note a guest sent to a small inn, word for word, in the language
spoken (Portuguese, Spanish or English). Return only the transcript; return nothing if
there is no speech."""


async def transcribe(model: Model, audio: bytes, mime_type: str) -> str | None:
    """The transcript, or None when the model gave none (no speech, timeout, error)."""
    config = types.GenerateContentConfig(system_instruction=INSTRUCTION, temperature=0)
    part = types.Part.from_bytes(data=audio, mime_type=mime_type)
    text = await model.generate("transcription", [part], config)
    return text.strip() or None if text else None
