"""An inn's WhatsApp credentials and staff numbers, as the property file gives them and as
they are kept: Evolution secrets sealed (AES-GCM, never in clear), staff numbers encrypted
in ``contacts`` and linked by hash, never in ``properties.settings``."""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from app.db import QUERIES
from app.errors import BadRequest
from app.pii import PiiKeys, SealBroken

# An Evolution instance's credentials: stored sealed, never in clear.
_EVOLUTION_SECRETS = ("webhook_secret", "api_key")


async def whatsapp_settings(
    conn: asyncpg.Connection, code: str, whatsapp: dict[str, Any], pii: PiiKeys | None
) -> dict[str, Any]:
    """The file's whatsapp object with each Evolution secret replaced by its seal. An
    unchanged secret keeps its stored seal, so re-importing the same file writes nothing."""
    whatsapp = dict(whatsapp)
    secrets = {name: whatsapp.pop(name) for name in _EVOLUTION_SECRETS if name in whatsapp}
    if not secrets:
        return whatsapp
    if pii is None:
        raise BadRequest("importing Evolution credentials needs PII_KEY and CONTACT_HASH_KEY")
    stored = await conn.fetchval(QUERIES["property_whatsapp_settings"], code) or {}
    for name, value in secrets.items():
        purpose = f"evolution:{name}"
        seal = stored.get(f"{name}_sealed")
        try:
            unchanged = seal is not None and pii.unseal(seal, purpose) == value
        except SealBroken:
            unchanged = False
        whatsapp[f"{name}_sealed"] = seal if unchanged else pii.seal(str(value), purpose)
    return whatsapp


async def store_staff_numbers(
    conn: asyncpg.Connection, property_id: int, numbers: tuple[str, ...], pii: PiiKeys | None
) -> None:
    """The property's staff numbers become exactly ``numbers``, stored only encrypted."""
    if numbers and pii is None:
        raise BadRequest("importing staff numbers needs PII_KEY and CONTACT_HASH_KEY")
    hashes = []
    for number in numbers:
        assert pii is not None
        digits = re.sub(r"\D", "", number)  # as WhatsApp writes numbers: "5548…"
        hashes.append(pii.contact_hash(digits))
        await conn.execute(QUERIES["upsert_contact"], hashes[-1], pii.encrypt(digits, "phone"))
    await conn.execute(QUERIES["replace_staff_numbers"], property_id, hashes)
