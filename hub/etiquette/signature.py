"""E6: a signature after the `-- ` line with name, title, address and phone."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from hub.etiquette.config import SignatureRule
from hub.etiquette.findings import Draft, Finding
from hub.etiquette.messages import field_name, say
from hub.etiquette.sections import Sections

_PARTS = re.compile(r"\s*(?:\||·|•|,(?=\s)|，|/(?=\s)|\s[-–—]\s)\s*")
_PHONE_NUMBER = re.compile(r"\+?\(?\d[\d\s().\-]{5,}\d")
_CONTACT = re.compile(r"\S+@\S+\.\w+|https?://\S+|www\.\S+", re.IGNORECASE)
_LETTERS = re.compile(r"[^\W\d_]")
_DIGIT = re.compile(r"\d")
_SENTENCE_MARK = re.compile(r"[!?。！？]")
_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b|\b[A-Z]{2} \d{5}(?:-\d{4})?\b|邮编")


@dataclass(frozen=True)
class SignatureWords:
    """The folded recognisers of one rule set (built once)."""

    title: re.Pattern[str]
    address: re.Pattern[str]
    phone_label: re.Pattern[str]


def signature_words(rule: SignatureRule) -> SignatureWords:
    """Compile the title, address and phone-label words of `rule` into three patterns."""
    return SignatureWords(
        _words(w for ws in rule.title_words.values() for w in ws),
        _words(w for ws in rule.address_words.values() for w in ws),
        _words(rule.phone_labels),
    )


def _words(words: Iterable[str]) -> re.Pattern[str]:
    alternatives = []
    for word in sorted(set(words), key=len, reverse=True):
        escaped = re.escape(word)
        alternatives.append(rf"\b{escaped}(?!\w)" if word[0].isascii() else escaped)
    return re.compile("|".join(alternatives) or "(?!)", re.IGNORECASE)


def signature_fields(text: str, words: SignatureWords) -> set[str]:
    """Which of name, title, address and phone a signature's text holds."""
    found: set[str] = set()
    name_candidates = []
    for line in text.splitlines():
        if _is_address_line(line, words):
            found.add("address")
        for part in _PARTS.split(line.strip()):
            if not part:
                continue
            kinds = _classify(part, words)
            found |= kinds
            if not kinds and _could_be_a_name(part):
                name_candidates.append(part)
    if name_candidates:
        found.add("name")
    return found


def _could_be_a_name(part: str) -> bool:
    return (
        bool(_LETTERS.search(part))
        and not _CONTACT.search(part)
        and not _DIGIT.search(part)
        and not _SENTENCE_MARK.search(part)
        and len(part) <= 40
        and len(part.split()) <= 5
    )


def _is_address_line(line: str, words: SignatureWords) -> bool:
    if words.phone_label.search(line) or _CONTACT.search(line):
        return False
    if _POSTCODE.search(line):
        return True
    return bool(words.address.search(line) and _DIGIT.search(line))


def _classify(part: str, words: SignatureWords) -> set[str]:
    digits = sum(c.isdigit() for c in part)
    if words.phone_label.search(part) and digits >= 5:
        return {"phone"}
    number = _PHONE_NUMBER.search(part)
    if number and sum(c.isdigit() for c in number.group()) >= 7:
        rest = part[: number.start()] + part[number.end() :]
        if len(_LETTERS.findall(rest)) <= 6:
            return {"phone"}
    if words.address.search(part) and (digits or re.search(r"地址|address", part, re.IGNORECASE)):
        return {"address"}
    if re.search(r"[省市区县].*[路街道号]|[路街道]\S*\d+号", part):
        return {"address"}
    if words.title.search(part):
        return {"title"}
    if _CONTACT.search(part) or (digits >= 7 and not _LETTERS.search(part)):
        return {"contact"}
    return set()


def check_signature(
    draft: Draft, rule: SignatureRule, sections: Sections, words: SignatureWords, language: str
) -> list[Finding]:
    """E6 findings: no signature, or a signature without a required field (span: the signature)."""
    if not rule.enabled or draft.channel not in rule.channels:
        return []
    if sections.signature is None or sections.signature_body is None:
        message = say(language, "signature_missing", delimiter=rule.delimiter)
        return [Finding("E6", rule.severity, message, None, "signature")]
    start, end = sections.signature_body
    present = signature_fields(draft.text[start:end], words)
    return [
        Finding(
            "E6",
            rule.severity,
            say(language, "signature_field_missing", field=field_name(language, name)),
            sections.signature,
            "signature",
        )
        for name in rule.required_fields
        if name not in present
    ]
