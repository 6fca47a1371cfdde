"""`check()`: every etiquette check that applies to a draft's channel, in one list of findings."""

from __future__ import annotations

from hub.etiquette.attachments import check_attachments
from hub.etiquette.body import check_body
from hub.etiquette.findings import Draft, Finding
from hub.etiquette.formatting import check_formatting
from hub.etiquette.phrases import check_phrases
from hub.etiquette.rules import EtiquetteRules
from hub.etiquette.sections import split_body
from hub.etiquette.signature import check_signature
from hub.etiquette.spelling import check_spelling
from hub.etiquette.subject import check_subject


def check(draft: Draft, rules: EtiquetteRules, language: str) -> list[Finding]:
    """All findings on `draft`, with messages in `language` (en or zh).

    Quoted earlier mail and the signature are not checked for wording or spelling; the
    signature is checked for its fields (E6). Safe to call from several threads at once.
    """
    config = rules.config
    sections = split_body(draft.text, config.E6.delimiter)
    own_text = sections.own_text(draft.text)
    findings = check_subject(draft, config.E3, rules.generic_subjects, language)
    findings += check_body(draft, config.E4, sections, language)
    findings += check_formatting(draft, config.E5, own_text, language)
    findings += check_signature(draft, config.E6, sections, rules.signature_words, language)
    findings += check_attachments(draft, config.E7, language)
    findings += check_spelling(own_text, config.E8, rules.custom_words, language)
    if draft.subject:
        findings += check_phrases(draft.subject, "subject", rules.phrases, config.phrases, language)
    findings += check_phrases(own_text, "body", rules.phrases, config.phrases, language)
    return findings
