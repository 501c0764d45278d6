"""Hotelly: sells rooms of small inns over WhatsApp and takes payment with Stripe."""
