"""Decoding mail text whose charset label is missing, unknown or wrong.

Order: the declared charset (with browser-style aliases) -> UTF-8 -> cp1252; the last step
never fails. `iso-8859-1` and `us-ascii` labels are read as cp1252, as browsers do.
"""

from __future__ import annotations

import codecs
import functools
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from typing import Any

ALIASES = {
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "ks_c_5601-1987": "cp949",
    "big5": "big5hkscs",
    "x-mac-roman": "mac_roman",
    "unicode-1-1-utf-7": "utf-7",
}
FALLBACKS = ("utf-8", "cp1252")


def canonical(label: str | None) -> str | None:
    """The Python codec name for a charset label, or None if it is empty or unknown."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except (LookupError, ValueError):
        return None


def decode(data: bytes, declared: str | None) -> tuple[str, str | None]:
    """Decode `data`; the second item describes a fallback that was needed, else None."""
    codec = canonical(declared)
    if codec is not None:
        try:
            return data.decode(codec), None
        except UnicodeDecodeError:
            pass
    for name in FALLBACKS:
        if name == codec:
            continue
        try:
            text = data.decode(name)
        except UnicodeDecodeError:
            continue
        if declared and codec is None:
            return text, f"unknown charset {declared!r}, decoded as {name}"
        if declared:
            return text, f"text is not {declared!r}, decoded as {name}"
        return text, None if data.isascii() else f"no charset declared, decoded as {name}"
    return data.decode("cp1252", errors="replace"), f"undecodable text in charset {declared!r}, replaced"


def repair_header(value: str) -> str:
    """Re-decode raw 8-bit bytes that the parser smuggled into a header as surrogates."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    data = value.encode("utf-8", errors="surrogateescape")
    for name in ("utf-8", "gb18030", "cp1252"):
        try:
            return data.decode(name)
        except UnicodeDecodeError:
            continue
    return data.decode("cp1252", errors="replace")


@functools.lru_cache(maxsize=1024)
def parsed_header(name: str, value: str) -> Any:
    """A raw header value read as `policy.default` reads it (cached per value); the value
    unfolded where the stdlib parser fails (it has bugs on hostile input)."""
    try:
        return policy.default.header_fetch_parse(name, value)
    except Exception:  # noqa: BLE001
        return "".join(value.splitlines())


def first_values(msg: Message) -> dict[str, str]:
    """Each header's first value as it came, by lower-case name, whatever policy `msg` was
    parsed with."""
    first: dict[str, str] = {}
    for key, value in msg.raw_items():
        first.setdefault(key.lower(), str(value))
    return first


def raw_header(msg: Message, name: str) -> str | None:
    """The first value of a header as it came, whatever policy `msg` was parsed with."""
    lower = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == lower:
            return str(value)
    return None


def header_text(msg: Message, name: str) -> str | None:
    """The first value of a header decoded as `policy.default` decodes it, from any policy's `msg`."""
    raw = raw_header(msg, name)
    return None if raw is None else str(parsed_header(name, raw))


def encoded_words(text: str) -> str:
    """Text with its RFC 2047 encoded words decoded (an address's display name); as it is
    where they cannot be decoded."""
    if "=?" not in text:
        return text
    try:
        return str(make_header(decode_header(text)))
    except Exception:  # noqa: BLE001 - bad base64, unknown charsets, malformed words
        return text
