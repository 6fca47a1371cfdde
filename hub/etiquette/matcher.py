"""One Aho-Corasick automaton over every phrase of the phrase lists, built once per rule set."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import ahocorasick

from hub.etiquette.config import PhraseEntry
from hub.etiquette.normalize import Folded, fold, fold_phrase, is_word_char

_CONTRACTIONS = (
    ("can't", "cannot"),
    ("won't", "will not"),
    ("shan't", "shall not"),
    ("n't", " not"),
    ("i'm", "i am"),
    ("'re", " are"),
    ("it's", "it is"),
    ("that's", "that is"),
    ("there's", "there is"),
    ("what's", "what is"),
    ("'ll", " will"),
    ("'ve", " have"),
    ("'d", " would"),
)
_APOSTROPHES = re.compile("[’‘`´]")
_CLAUSE_BREAKS = frozenset(",，.。;；:：!！?？\n")


def english_variants(phrase: str) -> set[str]:
    """A phrase with its contractions spelt out and its spelt-out forms contracted."""
    lowered = _APOSTROPHES.sub("'", phrase.casefold())
    expanded = lowered
    contracted = lowered
    for short, long in _CONTRACTIONS:
        expanded = expanded.replace(short, long)
    for short, long in _CONTRACTIONS:
        if long.startswith(" "):
            contracted = re.sub(rf"(?<=\w){long}\b", short, contracted)
        else:
            contracted = re.sub(rf"\b{long}\b", short, contracted)
    return {lowered, expanded, contracted}


@dataclass(frozen=True)
class Hit:
    """A phrase found in a text: the entry, the variant that matched, and its original span."""

    entry: int
    phrase: str
    start: int
    end: int


@dataclass(frozen=True)
class _Key:
    entry: int
    phrase: str
    is_exception: bool
    bounded_start: bool
    bounded_end: bool


class PhraseMatcher:
    """Finds every entry's phrases in a text in one pass; immutable once built."""

    def __init__(self, entries: Sequence[PhraseEntry], default_languages: Sequence[str]) -> None:
        automaton = ahocorasick.Automaton()
        keys: dict[str, list[_Key]] = {}
        for index, (entry, language) in enumerate(zip(entries, default_languages, strict=True)):
            for phrase, is_exception in itertools.chain(
                ((p, False) for p in entry.phrases), ((p, True) for p in entry.exceptions)
            ):
                variants = english_variants(phrase) if (entry.language or language) == "en" else {phrase}
                for folded in {fold_phrase(v) for v in variants}:
                    if not folded:
                        continue
                    keys.setdefault(folded, []).append(
                        _Key(
                            index,
                            phrase,
                            is_exception,
                            is_word_char(folded[0]),
                            is_word_char(folded[-1]),
                        )
                    )
        for folded, found in keys.items():
            automaton.add_word(folded, (len(folded), tuple(found)))
        if keys:
            automaton.make_automaton()
        self._automaton = automaton
        self._empty = not keys
        self.size = len(keys)

    def find(self, text: str) -> list[Hit]:
        """The phrases in `text`, exceptions applied, longest first where hits of one entry overlap."""
        if self._empty or not text:
            return []
        folded = fold(text)
        if not folded.text:
            return []
        hits: list[tuple[int, int, _Key]] = []
        exceptions: list[tuple[int, int, int]] = []
        for last, (length, found) in self._automaton.iter(folded.text):
            start, end = last - length + 1, last + 1
            for key in found:
                if not _bounded(folded, start, last, key):
                    continue
                if key.is_exception:
                    if not _crosses_clause(text, folded, start, end, key.phrase):
                        exceptions.append((key.entry, start, end))
                else:
                    hits.append((start, end, key))
        return _resolve(folded, hits, exceptions)


def _crosses_clause(text: str, folded: Folded, start: int, end: int, phrase: str) -> bool:
    original_start, original_end = folded.span(start, end)
    return any(c in _CLAUSE_BREAKS and c not in phrase for c in text[original_start:original_end])


def _bounded(folded: Folded, start: int, last: int, key: _Key) -> bool:
    if key.bounded_start and not folded.separated_before(start):
        return False
    return not (key.bounded_end and not folded.separated_after(last))


def _resolve(
    folded: Folded, hits: list[tuple[int, int, _Key]], exceptions: list[tuple[int, int, int]]
) -> list[Hit]:
    kept: list[tuple[int, int, _Key]] = []
    for start, end, key in sorted(hits, key=lambda h: (h[0], -(h[1] - h[0]))):
        if any(e == key.entry and s < end and start < x for e, s, x in exceptions):
            continue
        if any(k.entry == key.entry and s <= start and end <= x for s, x, k in kept):
            continue
        kept.append((start, end, key))
    result = []
    for start, end, key in kept:
        original_start, original_end = folded.span(start, end)
        result.append(Hit(key.entry, key.phrase, original_start, original_end))
    return result
