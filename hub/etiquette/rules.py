"""`EtiquetteRules`: the validated, compiled rule set every check reads; immutable and thread-safe."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import ValidationError

from hub.errors import RuleError
from hub.etiquette.config import EtiquetteConfig, PhraseFile
from hub.etiquette.phrases import PhraseBook
from hub.etiquette.signature import SignatureWords, signature_words
from hub.etiquette.spelling import checker
from hub.etiquette.subject import generic_subjects

ETIQUETTE_FILE = "etiquette.yaml"
PHRASES_DIR = "phrases"


class EtiquetteFileError(RuleError):
    """One etiquette rule file is invalid: `file` names it, `error` holds pydantic's details."""

    def __init__(self, file: str, error: ValidationError) -> None:
        super().__init__(f"{file}: {error}")
        self.file = file
        self.error = error


def validate_etiquette(data: Mapping[str, Any] | None) -> EtiquetteConfig:
    """`etiquette.yaml` data as a config (an empty file means every default); ValidationError if invalid."""
    return EtiquetteConfig.model_validate(data or {})


def validate_phrase_file(data: Mapping[str, Any] | None) -> PhraseFile:
    """One phrase file's data as a `PhraseFile`; ValidationError if invalid."""
    return PhraseFile.model_validate(data or {})


@dataclass(frozen=True)
class EtiquetteRules:
    """The etiquette configuration and phrase lists, compiled once for every check."""

    config: EtiquetteConfig
    phrase_files: Mapping[str, PhraseFile]
    phrases: PhraseBook
    generic_subjects: frozenset[str]
    signature_words: SignatureWords
    custom_words: frozenset[str]

    @classmethod
    def compile(cls, config: EtiquetteConfig, phrase_files: Mapping[str, PhraseFile]) -> EtiquetteRules:
        """Build the matchers of a validated configuration (and load the dictionary E8 needs)."""
        if config.E8.enabled and config.E8.languages.get("en", False):
            checker()
        return cls(
            config,
            MappingProxyType(dict(phrase_files)),
            PhraseBook.build(phrase_files),
            generic_subjects(config.E3),
            signature_words(config.E6),
            frozenset(w.casefold().replace("’", "'") for w in config.E8.custom_words),
        )

    @classmethod
    def from_dir(cls, path: Path) -> EtiquetteRules:
        """Load `etiquette.yaml` and `phrases/*.yaml` from a rules folder (PyYAML safe_load)."""
        etiquette_path = path / ETIQUETTE_FILE
        etiquette = _read(etiquette_path) if etiquette_path.exists() else {}
        phrase_files = {
            p.relative_to(path).as_posix(): _read(p) for p in sorted((path / PHRASES_DIR).glob("*.yaml"))
        }
        return load_etiquette(etiquette, phrase_files)


def _read(path: Path) -> Any:
    with path.open(encoding="utf-8") as file:
        return yaml.safe_load(file)


def load_etiquette(
    etiquette: Mapping[str, Any] | None, phrase_files: Mapping[str, Mapping[str, Any]]
) -> EtiquetteRules:
    """Validate already-parsed `etiquette.yaml` and phrase-file data and compile them.

    Raises `EtiquetteFileError` naming the file ("etiquette.yaml" or the key given in
    `phrase_files`) whose data is invalid, with the pydantic ValidationError (locations inside
    that file's data) as `error`.
    """
    try:
        config = validate_etiquette(etiquette)
    except ValidationError as error:
        raise EtiquetteFileError(ETIQUETTE_FILE, error) from error
    files = {}
    for name, data in phrase_files.items():
        try:
            files[name] = validate_phrase_file(data)
        except ValidationError as error:
            raise EtiquetteFileError(name, error) from error
    return EtiquetteRules.compile(config, files)
