"""SMS segments: how many parts a text is sent in, GSM-7 when it can be, else UCS-2 (3GPP TS 23.038)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")
SINGLE = {"GSM-7": 160, "UCS-2": 70}
"""Units in a text sent as one segment."""
PART = {"GSM-7": 153, "UCS-2": 67}
"""Units per segment of a concatenated text (the rest of each is the concatenation header)."""

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True, slots=True)
class Segments:
    """How a text goes out: its encoding, its length in that encoding's units, its segment count."""

    encoding: Encoding
    units: int
    count: int


def encoding_of(text: str) -> Encoding:
    """GSM-7 when every character is in the GSM alphabet (basic or extension), else UCS-2."""
    return "GSM-7" if all(c in GSM_BASIC or c in GSM_EXTENSION for c in text) else "UCS-2"


def _units(text: str, encoding: Encoding) -> list[int]:
    """Each character's size: septets in GSM-7 (an extension character takes two), UTF-16 units in UCS-2."""
    if encoding == "GSM-7":
        return [2 if c in GSM_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def count(text: str) -> Segments:
    """The segments `text` is sent in; a character is never split across two segments."""
    encoding = encoding_of(text)
    sizes = _units(text, encoding)
    total = sum(sizes)
    if total <= SINGLE[encoding]:
        return Segments(encoding, total, 1 if text else 0)
    part, segments, used = PART[encoding], 1, 0
    for size in sizes:
        if used + size > part:
            segments += 1
            used = 0
        used += size
    return Segments(encoding, total, segments)
