"""The model client: one call with a deadline, logged without its text.

On Cloud Run the SDK finds the service account through Application Default Credentials;
with ``UNDERSTANDING_BASE_URL`` (ENV=dev only) it talks to the local fake with stub
credentials. Every failure (timeout, HTTP error, an answer cut short) is ``None``: the
caller then does what it does without a model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

from google.genai import Client, types
from google.oauth2.credentials import Credentials

from app.settings import Settings

log = logging.getLogger("app.llm")

Purpose = Literal["reading", "transcription"]


@dataclass(frozen=True)
class Model:
    client: Client
    name: str
    reading_timeout_seconds: float = 3.0
    transcription_timeout_seconds: float = 20.0

    async def generate(
        self, purpose: Purpose, contents: list[Any], config: types.GenerateContentConfig
    ) -> str | None:
        """The model's text, or None when it did not answer in time or at all."""
        timeout = (
            self.reading_timeout_seconds
            if purpose == "reading"
            else self.transcription_timeout_seconds
        )
        started = time.monotonic()
        outcome, error, usage, text = "ok", None, None, None
        try:
            async with asyncio.timeout(timeout):
                response = await self.client.aio.models.generate_content(
                    model=self.name, contents=contents, config=config
                )
            usage = response.usage_metadata
            finish = response.candidates[0].finish_reason if response.candidates else None
            if finish not in (None, types.FinishReason.STOP):
                outcome = "incomplete"  # cut short (length, safety): not an answer to trust
            else:
                text = response.text
        except TimeoutError:
            outcome = "timeout"
        except Exception as exc:
            outcome, error = "error", type(exc).__name__
        log.info(
            "model_call",
            extra={
                "model": self.name,
                "purpose": purpose,
                "outcome": outcome,
                "error": error,
                "latency_ms": round((time.monotonic() - started) * 1000),
                "prompt_tokens": usage.prompt_token_count if usage else None,
                "output_tokens": usage.candidates_token_count if usage else None,
            },
        )
        return text


def model_from_settings(settings: Settings) -> Model | None:
    if settings.understanding_model is None:
        return None
    local = settings.understanding_base_url
    client = Client(
        vertexai=True,
        project=settings.understanding_project,
        location=settings.understanding_location,
        # The fake checks only that there is a token; None: Application Default Credentials.
        credentials=Credentials(token="dev-stub") if local else None,  # noqa: S106
        http_options=types.HttpOptions(
            base_url=local,
            api_version="v1" if local else None,
            # No retries of the SDK's own: one attempt within our deadline, then the rules.
            retry_options=types.HttpRetryOptions(attempts=1),
        ),
    )
    return Model(
        client,
        settings.understanding_model,
        settings.understanding_timeout_seconds,
        settings.transcription_timeout_seconds,
    )
