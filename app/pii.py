"""Guests' personal data: sealed with AES-GCM wherever it rests or travels, hashed for identity.

A phone number or a message text is stored only encrypted (``encrypt``), travels in task
bodies only sealed (``seal``: the same encryption as URL-safe text), and is identified
everywhere else, logs and outbox payloads included, by ``contact_hash``: an HMAC under
its own key, so the hash of a known number cannot be computed without that key. Each use
binds a purpose as associated data, so a ciphertext made for one column or task cannot be
replayed as another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import unicodedata
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.settings import Settings

_NONCE_BYTES = 12


class SealBroken(Exception):
    """A ciphertext that this key did not make for this purpose (or that was altered)."""


@dataclass(frozen=True)
class PiiKeys:
    aead: AESGCM = field(repr=False)
    hash_key: bytes = field(repr=False)

    def contact_hash(self, phone: str) -> str:
        """The guest's stable identity: an HMAC of the number's digits."""
        digits = re.sub(r"\D", "", phone).encode()
        return hmac.new(self.hash_key, digits, hashlib.sha256).hexdigest()

    def name_index(self, name: str) -> list[str]:
        """A guest name's blind index: an HMAC of each of its words, accents and case
        folded, so "joão" finds "João da Silva" while the index reveals no name."""
        folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
        words = sorted(set(re.findall(r"[a-z0-9]+", folded)))
        return [
            hmac.new(self.hash_key, b"name:" + word.encode(), hashlib.sha256).hexdigest()
            for word in words
        ]

    def encrypt(self, plaintext: str, purpose: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self.aead.encrypt(nonce, plaintext.encode(), purpose.encode())

    def decrypt(self, blob: bytes, purpose: str) -> str:
        try:
            plain = self.aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], purpose.encode())
        except (InvalidTag, ValueError):
            raise SealBroken(purpose) from None
        return plain.decode()

    def seal(self, plaintext: str, purpose: str) -> str:
        return base64.urlsafe_b64encode(self.encrypt(plaintext, purpose)).decode()

    def unseal(self, sealed: str, purpose: str) -> str:
        try:
            blob = base64.urlsafe_b64decode(sealed.encode())
        except (ValueError, UnicodeEncodeError):
            raise SealBroken(purpose) from None
        return self.decrypt(blob, purpose)


def pii_keys(settings: Settings) -> PiiKeys:
    if settings.pii_key is None or settings.contact_hash_key is None:
        raise ValueError("PII_KEY and CONTACT_HASH_KEY are required")
    return PiiKeys(
        aead=AESGCM(base64.b64decode(settings.pii_key.reveal())),
        hash_key=base64.b64decode(settings.contact_hash_key.reveal()),
    )
