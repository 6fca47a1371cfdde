"""Separating a reply's new text from the quoted history and the signature below it.

Recognises attribution lines ("On … wrote:", "Am … schrieb …:", "在 … 写道:", "… 年 … 月 … 日
… 写道"), Outlook/Foxmail/QQ header blocks ("From:/Sent:", "Von:/Gesendet:", "发件人:/发送时间:"),
"Original Message" separators in English, German and Chinese, and a trailing `>` block. The
signature is what follows a `-- ` line (RFC 3676) or a "Sent from my …" line. Nothing is
thrown away: `new + signature + quoted` holds every line of the input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_COLON = r"[:：]"
_ATTRIBUTION = [
    re.compile(r"^\s*On\b.{4,300}\bwrote\s*:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^\s*Am\b.{4,300}\bschrieb\b.{0,200}:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^\s*Le\b.{4,300}\ba écrit\s*:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^\s*在.{2,300}写道\s*[:：]?\s*$", re.DOTALL),
    re.compile(r"^\s*\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日.{0,300}写道\s*[:：]?\s*$", re.DOTALL),
    re.compile(r"^\s*\d{4}[-/.]\d{1,2}[-/.]\d{1,2}.{0,300}(?:wrote|写道|schrieb.*)\s*[:：]?\s*$", re.DOTALL),
]
_ATTRIBUTION_WORD = re.compile(r"wrote|schrieb|écrit|写道", re.IGNORECASE)
_SEPARATOR = re.compile(
    r"^\s*(?:-{2,}\s*(?:Original Message|Forwarded message|Ursprüngliche Nachricht|Weitergeleitete Nachricht"
    r"|原始邮件|转发邮件|原邮件)\s*-{2,}|_{20,}|-{20,})\s*$",
    re.IGNORECASE,
)
_FIRST_HEADER = re.compile(rf"^\s*[*>\s]*(?:From|Von|发件人|寄件者|De){_COLON}", re.IGNORECASE)
_NEXT_HEADER = re.compile(
    rf"^\s*[*>\s]*(?:Sent|Date|To|Subject|Cc|Gesendet|Datum|An|Betreff|发送时间|时间|日期|收件人|主题|抄送"
    rf"|寄件日期|收件者|主旨|Envoyé|Objet|À){_COLON}",
    re.IGNORECASE,
)
_SENT_FROM = re.compile(
    r"^\s*(?:Sent from my\b.{0,60}|Sent from (?:Outlook|Mail|Yahoo Mail)\b.{0,60}|Get Outlook for\b.{0,40}"
    r"|Von meinem\b.{0,60}gesendet|Gesendet von meinem\b.{0,60}|发自我的.{0,30}|从我的.{0,30}发送)\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Split:
    """A mail body cut into the new text, the signature and the quoted history (each may be '')."""

    new: str
    signature: str
    quoted: str


def split(text: str) -> Split:
    """Cut `text` into new text, signature and quoted history."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start = _quote_start(lines)
    head, quoted = lines[:start], lines[start:]
    sig = _signature_start(head)
    new, signature = head[:sig], head[sig:]
    result = Split(_join(new), _join(signature), _join(quoted))
    if not result.new and result.quoted and not result.signature:
        return Split(result.quoted, "", "")
    return result


def _quote_start(lines: list[str]) -> int:
    for i, line in enumerate(lines):
        if not line.strip() or _is_quote_line(line):
            continue
        if _SEPARATOR.match(line) and _header_block_near(lines, i + 1):
            return i
        if _SEPARATOR.match(line) and re.search(r"[A-Za-z\u4e00-\u9fff]", line):
            return i
        if _FIRST_HEADER.match(line) and _header_block_near(lines, i):
            return _separator_above(lines, i)
        if _attribution_at(lines, i):
            return i
    return _trailing_quote(lines)


def _attribution_at(lines: list[str], i: int) -> bool:
    window = lines[i : i + 3]
    if not any(_ATTRIBUTION_WORD.search(x) for x in window):
        return False
    for span in (1, 2, 3):
        joined = " ".join(x.strip() for x in window[:span])
        if len(joined) < 400 and any(p.match(joined) for p in _ATTRIBUTION):
            return True
    return False


def _is_quote_line(line: str) -> bool:
    return line.lstrip().startswith(">")


def _header_block_near(lines: list[str], i: int) -> bool:
    """Whether a From-style line at (or just after) `i` is followed by another header line."""
    window = [x for x in lines[i : i + 6] if x.strip()]
    if not window or not _FIRST_HEADER.match(window[0]):
        return False
    return any(_NEXT_HEADER.match(x) for x in window[1:5])


def _separator_above(lines: list[str], i: int) -> int:
    j = i - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    return j if j >= 0 and _SEPARATOR.match(lines[j]) else i


def _trailing_quote(lines: list[str]) -> int:
    """The first line of the `>` block that ends the text (blank lines and a signature may follow)."""
    end = len(lines)
    while end > 0 and not lines[end - 1].strip():
        end -= 1
    sig = _signature_start(lines[:end])
    if sig < end and any(_is_quote_line(x) for x in lines[:sig]):
        tail_ok = not any(_is_quote_line(x) for x in lines[sig:end])
        end = sig if tail_ok else end
    i = end
    while i > 0 and (_is_quote_line(lines[i - 1]) or not lines[i - 1].strip()):
        i -= 1
    while i < end and not lines[i].strip():
        i += 1
    if i >= end or not any(_is_quote_line(x) for x in lines[i:end]):
        return len(lines)
    if i > 0:
        for span in (1, 2):
            joined = " ".join(x.strip() for x in lines[max(0, i - span) : i])
            if joined.rstrip().endswith((":", "：")):
                return max(0, i - span) if _looks_like_intro(joined) else i
    return i


def _looks_like_intro(line: str) -> bool:
    return bool(re.search(r"wrote|schrieb|写道|a écrit|\d{4}", line, re.IGNORECASE))


def _signature_start(lines: list[str]) -> int:
    for i in range(len(lines) - 1, -1, -1):
        if lines[i] in ("-- ", "--"):
            return i
    end = len(lines)
    while end > 0 and not lines[end - 1].strip():
        end -= 1
    if end and _SENT_FROM.match(lines[end - 1]):
        return end - 1
    return len(lines)


def _join(lines: list[str]) -> str:
    return "\n".join(lines).strip("\n")
