"""E4: one mail, one page; a long body opens with a summary of its main point."""

from __future__ import annotations

import re

from hub.etiquette.config import BodyRule
from hub.etiquette.findings import Draft, Finding
from hub.etiquette.messages import say
from hub.etiquette.normalize import fold_phrase
from hub.etiquette.sections import Sections

_LINE = re.compile(r"[^\n]*\S[^\n]*")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\u3000]*\n")
_SALUTATION = re.compile(
    r"^(?:dear|hi|hello|good (?:morning|afternoon|evening)|尊敬的|亲爱的|您好|你好).{0,60}$"
    r"|^.{1,40}[,，:：]$",
    re.IGNORECASE,
)


def check_body(draft: Draft, rule: BodyRule, sections: Sections, language: str) -> list[Finding]:
    """E4 findings on the agent's own words (the signature and quoted mail do not count)."""
    if not rule.enabled or draft.channel not in rule.channels:
        return []
    own = [(s, e) for s, e in sections.own if draft.text[s:e].strip()]
    if not own:
        return []
    start, end = own[0][0], own[-1][1]
    text = draft.text
    lines = [m.span() for s, e in own for m in _LINE.finditer(text, s, e)]
    own_chars = sum(len(text[s:e].strip()) for s, e in own)
    findings = []
    if len(lines) > rule.max_lines:
        span = (lines[rule.max_lines][0], end)
        message = say(language, "body_too_many_lines", count=len(lines), limit=rule.max_lines)
        findings.append(Finding("E4", rule.severity, message, span, "body"))
    if own_chars > rule.max_chars:
        message = say(language, "body_too_many_chars", count=own_chars, limit=rule.max_chars)
        findings.append(Finding("E4", rule.severity, message, (start, end), "body"))
    if len(lines) > rule.summary_first_over_lines and not _opens_with_summary(text[start:end], rule):
        findings.append(
            Finding("E4", rule.summary_severity, say(language, "body_summary_first"), (start, end), "body")
        )
    return findings


def _opens_with_summary(text: str, rule: BodyRule) -> bool:
    paragraphs = [p.strip() for p in _PARAGRAPH_BREAK.split(text.strip()) if p.strip()]
    if paragraphs and "\n" not in paragraphs[0] and _SALUTATION.match(paragraphs[0]):
        paragraphs = paragraphs[1:]
    if not paragraphs:
        return True
    first = paragraphs[0]
    head = fold_phrase(first[:40])
    markers = (fold_phrase(m) for words in rule.summary_markers.values() for m in words)
    if any(head.startswith(m) for m in markers):
        return True
    return len(first) <= rule.summary_max_chars and first.count("\n") < 3
