"""Pre-send etiquette checks: one small function per rule family, findings tagged with rule IDs.

Build an `EtiquetteRules` once (`load_etiquette` from parsed YAML, or `EtiquetteRules.from_dir`)
and call `check(draft, rules, language)` for every outgoing message; `has_errors` says whether
the findings block sending.
"""

from hub.etiquette.check import check
from hub.etiquette.config import EtiquetteConfig, PhraseEntry, PhraseFile
from hub.etiquette.findings import Draft, DraftAttachment, Finding, has_errors
from hub.etiquette.rules import (
    EtiquetteFileError,
    EtiquetteRules,
    load_etiquette,
    validate_etiquette,
    validate_phrase_file,
)

__all__ = [
    "Draft",
    "DraftAttachment",
    "EtiquetteConfig",
    "EtiquetteFileError",
    "EtiquetteRules",
    "Finding",
    "PhraseEntry",
    "PhraseFile",
    "check",
    "has_errors",
    "load_etiquette",
    "validate_etiquette",
    "validate_phrase_file",
]
