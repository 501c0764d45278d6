"""Stripe: webhook verification, Checkout Sessions, event handling, refunds."""
