"""L1-L7: forbidden phrases, negative wording, jargon and policy refusals from the phrase lists."""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hub.etiquette.config import FORBIDDEN_RULES, PhraseEntry, PhraseFile, PhraseRules, Severity
from hub.etiquette.findings import FieldName, Finding
from hub.etiquette.matcher import Hit, PhraseMatcher
from hub.etiquette.messages import say

_SENTENCE_BREAK = re.compile(r"[.!?;。！？；…\n]+")


@dataclass(frozen=True)
class PhraseBook:
    """Every phrase entry of a rule set, compiled into one matcher."""

    entries: tuple[PhraseEntry, ...]
    languages: tuple[str, ...]
    matcher: PhraseMatcher

    @classmethod
    def build(cls, files: Mapping[str, PhraseFile]) -> PhraseBook:
        """Compile the entries of all phrase files (in file-name order) into one automaton."""
        entries: list[PhraseEntry] = []
        languages: list[str] = []
        for name in sorted(files):
            for entry in files[name].entries:
                entries.append(entry)
                languages.append(entry.language or files[name].language)
        return cls(tuple(entries), tuple(languages), PhraseMatcher(entries, languages))


def check_phrases(
    text: str, field: FieldName, book: PhraseBook, rules: PhraseRules, language: str
) -> list[Finding]:
    """L1-L7 findings in `text` (offsets into it), in text order."""
    hits = book.matcher.find(text)
    if not hits:
        return []
    breaks = [m.end() for m in _SENTENCE_BREAK.finditer(text)]
    located = [(bisect.bisect_right(breaks, h.start), h, book.entries[h.entry]) for h in hits]
    refusals = _policy_refusals(located, text, field, rules, language) if rules.L7.enabled else []
    refused = {sentence for sentence, _ in refusals}
    alternatives = [s for s, _, e in located if e.rule == "L3" and e.role == "alternative"]
    findings = [f for _, f in refusals]
    taken: list[tuple[str, int, int]] = []
    for sentence, hit, entry in sorted(located, key=lambda x: (x[1].start, -(x[1].end - x[1].start))):
        if entry.rule == "L7" or entry.role is not None:
            continue
        switch = getattr(rules, entry.rule)
        if not switch.enabled:
            continue
        if entry.rule == "L3" and (
            sentence in refused
            or any(abs(a - sentence) <= rules.L3.alternative_within_sentences for a in alternatives)
        ):
            continue
        if any(r == entry.rule and s <= hit.start and hit.end <= e for r, s, e in taken):
            continue
        taken.append((entry.rule, hit.start, hit.end))
        findings.append(_finding(entry, hit, text, field, entry.severity or switch.severity, language))
    return sorted(findings, key=lambda f: f.span or (0, 0))


def _finding(entry: PhraseEntry, hit: Hit, text: str, field: FieldName, severity: Severity,
             language: str) -> Finding:  # fmt: skip
    phrase = text[hit.start : hit.end]
    message = say(language, entry.rule, phrase=phrase)
    if entry.rule == "L3":
        suggestion = entry.rewrite
    elif entry.rule == "L4":
        suggestion = say(language, "L4_explain", explanation=entry.explanation)
    elif entry.suggestion:
        suggestion = entry.suggestion
    elif entry.rule in FORBIDDEN_RULES:
        suggestion = say(language, f"{entry.rule}_suggestion")
    else:
        suggestion = None
    return Finding(entry.rule, severity, message, (hit.start, hit.end), field, suggestion)


def _policy_refusals(
    located: Sequence[tuple[int, Hit, PhraseEntry]], text: str, field: FieldName, rules: PhraseRules,
    language: str,
) -> list[tuple[int, Finding]]:  # fmt: skip
    roles: dict[str, list[tuple[int, Hit, PhraseEntry]]] = {"policy": [], "refusal": [], "reason": []}
    for sentence, hit, entry in located:
        if entry.rule == "L7" and entry.role is not None:
            roles[entry.role].append((sentence, hit, entry))
    window = rules.L7.reason_within_sentences
    refusing = {sentence for sentence, _, _ in roles["refusal"]}
    reasons = [sentence for sentence, _, _ in roles["reason"]]
    findings = []
    reported: set[int] = set()
    for sentence, hit, entry in roles["policy"]:
        if sentence not in refusing or sentence in reported:
            continue
        if any(abs(r - sentence) <= window for r in reasons):
            continue
        reported.add(sentence)
        finding = Finding(
            "L7",
            entry.severity or rules.L7.severity,
            say(language, "L7", phrase=text[hit.start : hit.end]),
            (hit.start, hit.end),
            field,
            entry.suggestion or say(language, "L7_suggestion"),
        )
        findings.append((sentence, finding))
    return findings
