"""E8: English spelling of the agent's own words (URLs, addresses, numbers and known names skipped)."""

from __future__ import annotations

import functools
import re
import threading

from spellchecker import SpellChecker

from hub.etiquette.config import SpellingRule
from hub.etiquette.findings import Finding
from hub.etiquette.messages import say

_SKIPPED = re.compile(r"(?<!\S)\S*?(?:\d|@|://|www\.|\.(?:com|org|net|cn|io)\b)\S*", re.IGNORECASE)
_WORD = re.compile(r"(?<![\w'’])[A-Za-z]+(?:['’][A-Za-z]+)*(?![\w'’])")
_SENTENCE_END = re.compile(r"[.!?。！？:：]\s*$|^\s*$")
_lock = threading.Lock()


@functools.cache
def _checker() -> SpellChecker:
    return SpellChecker(language="en", distance=1)


def checker() -> SpellChecker:
    """The English dictionary, loaded once per process."""
    with _lock:
        return _checker()


def candidate_words(own_text: str) -> list[tuple[int, int, str]]:
    """The words to spell-check: (start, end, word) of plain lower- or sentence-case Latin words."""
    masked = _SKIPPED.sub(lambda m: " " * len(m.group()), own_text)
    words = []
    for match in _WORD.finditer(masked):
        word = match.group()
        core = word[:-2] if word.endswith(("'s", "’s")) else word
        if len(core) < 2 or core.isupper():
            continue
        if core[0].isupper():
            if not core[1:].islower():
                continue
            if not _SENTENCE_END.search(masked[max(0, match.start() - 3) : match.start()]):
                continue
        elif not core.islower():
            continue
        words.append((match.start(), match.start() + len(core), core))
    return words


def check_spelling(own_text: str, rule: SpellingRule, custom: frozenset[str], language: str) -> list[Finding]:
    """E8 findings for English words the dictionary and the custom word list do not know."""
    if not rule.enabled or not rule.languages.get("en", False):
        return []
    words = candidate_words(own_text)
    if not words:
        return []
    spell = checker()
    known = spell.word_frequency.dictionary
    findings: list[Finding] = []
    for start, end, word in words:
        folded = word.casefold().replace("’", "'")
        if folded in known or folded in custom:
            continue
        correction = spell.correction(folded)
        suggestion = say(language, "spelling_suggestion", correction=correction) if correction else None
        message = say(language, "spelling", word=word)
        findings.append(Finding("E8", rule.severity, message, (start, end), "body", suggestion))
        if len(findings) >= rule.max_findings:
            break
    return findings
