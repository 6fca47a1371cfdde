"""Where the agent's own words are in a body: not the signature, not the quoted earlier mail."""

from __future__ import annotations

import re
from dataclasses import dataclass

MASK = "\ufffc"
_QUOTED_LINE = re.compile(r"^[ \t]*>")
_REPLY_HEADER = re.compile(
    r"^(?:On .{1,200} wrote:|[-_]{2,} ?(?:Original Message|Forwarded message) ?[-_]{2,}"
    r"|在.{1,200}写道[:：]|[-_]{2,} ?(?:原始邮件|转发的邮件) ?[-_]{2,}|From: .+ Sent: .+)\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Sections:
    """Offsets into the body: the agent's own text, the signature, the quoted text."""

    own: tuple[tuple[int, int], ...]
    signature: tuple[int, int] | None
    signature_body: tuple[int, int] | None
    quoted: tuple[tuple[int, int], ...]

    def own_text(self, text: str) -> str:
        """`text` with everything but the agent's own words masked, offsets unchanged."""
        keep = [MASK if c != "\n" else c for c in text]
        for start, end in self.own:
            keep[start:end] = text[start:end]
        return "".join(keep)


def split_body(text: str, delimiter: str) -> Sections:
    """Find the signature (after the delimiter line) and quoted text in a plain-text body."""
    lines = text.splitlines(keepends=True)
    offsets = []
    position = 0
    for line in lines:
        offsets.append(position)
        position += len(line)
    quoted: list[tuple[int, int]] = []
    quote_from = len(text)
    for line, start in zip(lines, offsets, strict=True):
        stripped = line.rstrip("\r\n")
        if _REPLY_HEADER.match(stripped):
            quote_from = start
            quoted.append((start, len(text)))
            break
        if _QUOTED_LINE.match(stripped):
            quoted.append((start, start + len(line)))
    signature = None
    signature_body = None
    marker = delimiter.strip()
    for line, start in zip(lines, offsets, strict=True):
        if start >= quote_from:
            break
        if line.strip() == marker and not any(s <= start < e for s, e in quoted):
            end = _end_before(quote_from, quoted, start)
            signature = (start, end)
            signature_body = (start + len(line), end)
    own = _complement(len(text), [*quoted, *([signature] if signature else [])])
    return Sections(tuple(own), signature, signature_body, tuple(quoted))


def _end_before(quote_from: int, quoted: list[tuple[int, int]], start: int) -> int:
    return min([quote_from, *(s for s, _ in quoted if s > start)])


def _complement(length: int, taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    free = []
    position = 0
    for start, end in sorted(taken):
        if start > position:
            free.append((position, start))
        position = max(position, end)
    if position < length:
        free.append((position, length))
    return free
