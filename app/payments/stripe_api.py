"""The Stripe API client: async, httpx-backed, against STRIPE_API_BASE."""

from __future__ import annotations

from dataclasses import dataclass

import stripe

from app.settings import Settings

# Stripe answers in well under a second; a slow call must not hold a task for long.
STRIPE_TIMEOUT_SECONDS = 5
# The library retries connection errors and 409/429/5xx with the same idempotency key.
STRIPE_NETWORK_RETRIES = 2


@dataclass(frozen=True)
class StripeApi:
    client: stripe.StripeClient
    http: stripe.HTTPXClient

    async def close(self) -> None:
        await self.http.close_async()


def open_stripe(settings: Settings) -> StripeApi:
    if settings.stripe_secret_key is None:
        raise RuntimeError("STRIPE_SECRET_KEY is not set")
    http = stripe.HTTPXClient(timeout=STRIPE_TIMEOUT_SECONDS)
    client = stripe.StripeClient(
        settings.stripe_secret_key.reveal(),
        base_addresses={"api": settings.stripe_api_base},
        http_client=http,
        max_network_retries=STRIPE_NETWORK_RETRIES,
    )
    return StripeApi(client, http)
