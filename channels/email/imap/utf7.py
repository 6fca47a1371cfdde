"""Mailbox names on the wire: modified UTF-7 (RFC 3501 section 5.1.3), quoted."""

from __future__ import annotations

import base64


def encode(name: str) -> str:
    """A mailbox name in modified UTF-7."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def decode(name: str) -> str:
    """A mailbox name from modified UTF-7; raise ValueError if it is malformed."""
    out: list[str] = []
    i = 0
    while i < len(name):
        char = name[i]
        if char != "&":
            out.append(char)
            i += 1
            continue
        end = name.find("-", i)
        if end < 0:
            raise ValueError(f"unterminated shift in mailbox name {name!r}")
        chunk = name[i + 1 : end]
        if not chunk:
            out.append("&")
        else:
            padded = chunk.replace(",", "/") + "=" * (-len(chunk) % 4)
            out.append(base64.b64decode(padded).decode("utf-16-be"))
        i = end + 1
    return "".join(out)


def quoted(name: str) -> str:
    """The mailbox name as an IMAP quoted string, ready to put on a command line."""
    encoded = encode(name)
    if any(c in encoded for c in "\r\n\x00"):
        raise ValueError(f"mailbox name with a line break: {name!r}")
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'
