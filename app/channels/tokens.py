"""Export tokens: the secret part of a calendar's feed URL.

A token is an HMAC (ICAL_SECRET) of the property, room type, calendar and the calendar's
rotation number: not guessable, and a new one for the same calendar is a bump of that
number. The database keeps only the token's SHA-256 (``calendars.export_digest``), so the
public role finds a calendar from its URL without knowing the key.
"""

from __future__ import annotations

import hashlib
import hmac

# Export URLs live under this path of the public role: /ical/<token>.ics
EXPORT_PATH = "/ical"


def export_token(
    secret: str, property_code: str, room_type: str, calendar: str, rotation: int
) -> str:
    message = "\x1f".join((property_code, room_type, calendar, str(rotation))).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:40]


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def export_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}{EXPORT_PATH}/{token}.ics"
