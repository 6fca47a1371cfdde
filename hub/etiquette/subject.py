"""E3: the subject is present, short enough as sent, not generic, and keeps the reference on replies."""

from __future__ import annotations

import re

from hub.etiquette.config import SubjectRule
from hub.etiquette.findings import Draft, Finding
from hub.etiquette.messages import say
from hub.etiquette.normalize import fold_phrase

_PREFIX = re.compile(r"^\s*(?:(?:re|aw|fw|fwd|回复|答复|转发)\s*[:：]\s*)+", re.IGNORECASE)
_TOKEN = re.compile(r"\[#\d+\]")


def generic_subjects(rule: SubjectRule) -> frozenset[str]:
    """The folded generic subjects of every language, for `check_subject`."""
    return frozenset(fold_phrase(s) for words in rule.generic_subjects.values() for s in words)


def check_subject(draft: Draft, rule: SubjectRule, generic: frozenset[str], language: str) -> list[Finding]:
    """E3 findings on `draft.subject`; spans are offsets into the subject."""
    if not rule.enabled or draft.channel not in rule.channels:
        return []
    subject = draft.subject or ""
    if not subject.strip():
        return [Finding("E3", rule.severity, say(language, "subject_missing"), None, "subject")]
    lead = len(subject) - len(subject.lstrip())
    stripped = subject.strip()
    findings: list[Finding] = []
    added = 0
    suggested = stripped
    if draft.is_reply and not _PREFIX.match(stripped):
        added += len(rule.reply_prefix)
        suggested = rule.reply_prefix + suggested
        message = say(language, "subject_no_prefix", prefix=rule.reply_prefix.strip())
        findings.append(Finding("E3", rule.generic_severity, message, None, "subject", suggested))
    if draft.is_reply and rule.token_required_on_replies and draft.conversation_id is not None:
        token = rule.token_format.format(id=draft.conversation_id)
        if token not in stripped:
            added += len(token) + 1
            suggested = f"{suggested} {token}"
            message = say(language, "subject_no_token", token=token)
            findings.append(Finding("E3", rule.severity, message, None, "subject", suggested))
    length = len(stripped) + added
    if length > rule.warn_length:
        too_long = length > rule.max_length
        limit = rule.max_length if too_long else rule.warn_length
        cut = lead + max(0, limit - added)
        findings.append(
            Finding(
                "E3",
                rule.severity if too_long else "warning",
                say(language, "subject_too_long" if too_long else "subject_long", length=length, limit=limit),
                (min(cut, lead + len(stripped) - 1), lead + len(stripped)),
                "subject",
            )
        )
    core = fold_phrase(_TOKEN.sub("", _PREFIX.sub("", stripped))).strip("?!")
    if core in generic or not core:
        message = say(language, "subject_generic", subject=stripped)
        findings.append(
            Finding("E3", rule.generic_severity, message, (lead, lead + len(stripped)), "subject")
        )
    return findings
