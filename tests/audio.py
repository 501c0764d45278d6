"""Voice notes for tests: valid Ogg Opus containers (what WhatsApp records) of a given
duration and size. The packets are not real Opus speech: nothing here decodes audio; the
duration is the container's (its last page's granule position), as mutagen reads it."""

from __future__ import annotations

import struct

from mutagen.ogg import OggPage

SAMPLE_RATE = 48_000  # Opus granule positions count 48 kHz samples
PRE_SKIP = 312
_PACKET = 255 * 250  # the data of one audio page: one packet under the 255-lacing limit


def _page(
    packets: list[bytes], position: int, sequence: int, *, first: bool = False, last: bool = False
) -> bytes:
    page = OggPage()
    page.serial, page.sequence, page.position = 0x5EED, sequence, position
    page.first, page.last = first, last
    page.packets = packets
    return bytes(page.write())


def ogg_opus(seconds: float, size: int | None = None) -> bytes:
    """An Ogg Opus file of ``seconds``, padded with audio pages to about ``size`` bytes."""
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, PRE_SKIP, SAMPLE_RATE, 0, 0)
    vendor = b"hotelly-tests"
    tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
    pages = [_page([head], 0, 0, first=True), _page([tags], 0, 1)]
    total = PRE_SKIP + round(seconds * SAMPLE_RATE)
    count = max(1, ((size or 0) - 200) // (_PACKET + 300) + 1)
    for n in range(1, count + 1):
        packet = bytes([0xF8]) + bytes(_PACKET - 1 if size else 40)  # a TOC byte, then silence
        pages.append(_page([packet], total * n // count, n + 1, last=n == count))
    return b"".join(pages)
