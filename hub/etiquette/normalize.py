"""Text folded for phrase matching, with a map from every folded character back to the original.

Folding is NFKC (full-width to half-width), case folding, and dropping separators (spaces,
line breaks, punctuation other than `?` and `!`, format characters), so that "I don't-know",
"I  DON'T know", "我、不、知道" and the same in full-width letters fold to the same letters. Dropped
separators are remembered so that English phrases can still require word boundaries.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import operator
import re
import unicodedata
from dataclasses import dataclass

_KEPT_PUNCTUATION = frozenset("?!")
_DROPPED_SYMBOLS = frozenset("~*|`^_")
_LAST_CODE_POINT = 0x30000
SEPARATOR = " "


def _is_separator(char: str) -> bool:
    if char in _KEPT_PUNCTUATION:
        return False
    if char in _DROPPED_SYMBOLS:
        return True
    category = unicodedata.category(char)
    return category[0] in "ZPC" or category == "Sk"


def _fold_char(char: str) -> str:
    folded = unicodedata.normalize("NFKC", char).casefold()
    return "".join(c for c in folded if not _is_separator(c))


@dataclass(frozen=True)
class _Tables:
    single: dict[int, str]
    multi: dict[str, str]
    multi_pattern: re.Pattern[str]


@functools.cache
def _tables() -> _Tables:
    single: dict[int, str] = {}
    multi: dict[str, str] = {}
    for code in range(_LAST_CODE_POINT):
        char = chr(code)
        if 0xD800 <= code <= 0xDFFF:
            continue
        folded = _fold_char(char)
        if not folded:
            single[code] = SEPARATOR
        elif len(folded) == 1:
            if folded != char:
                single[code] = folded
        else:
            multi[char] = folded
    pattern = re.compile("[" + "".join(re.escape(c) for c in sorted(multi)) + "]")
    return _Tables(single, multi, pattern)


def is_word_char(char: str) -> bool:
    """Whether a folded character belongs to a space-separated word (Latin, Cyrillic, digits...)."""
    return char.isalnum() and char < "\u2e80"


@dataclass(frozen=True)
class Folded:
    """Folded text and the runs that map it back to the original text.

    `runs` holds, per run of folded characters, (folded start, original start, expanded): in a
    plain run folded character i comes from original character start + (i - folded start); an
    expanded run is several folded characters made from one original character (e.g. "ß").
    """

    text: str
    run_starts: tuple[int, ...]
    run_origins: tuple[int, ...]
    run_expanded: tuple[bool, ...]

    def origin(self, index: int) -> int:
        """The original offset of folded character `index`."""
        run = bisect.bisect_right(self.run_starts, index) - 1
        if self.run_expanded[run]:
            return self.run_origins[run]
        return self.run_origins[run] + index - self.run_starts[run]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span [start, end) of the folded span [start, end)."""
        return self.origin(start), self.origin(end - 1) + 1

    def separated_before(self, index: int) -> bool:
        """Whether a word boundary lies just before folded character `index`."""
        if index == 0:
            return True
        if self.origin(index) > self.origin(index - 1) + 1:
            return True
        return not is_word_char(self.text[index - 1]) or not is_word_char(self.text[index])

    def separated_after(self, index: int) -> bool:
        """Whether a word boundary lies just after folded character `index`."""
        return index + 1 >= len(self.text) or self.separated_before(index + 1)


_KEPT = re.compile(f"[^{SEPARATOR}]+")
_GAPS = re.compile(f"{SEPARATOR}+")


def fold(text: str) -> Folded:
    """Fold `text` for matching, keeping the map back to its original offsets."""
    tables = _tables()
    translated = text.translate(tables.single)
    lengths = list(map(len, _KEPT.findall(translated)))
    gaps = map(len, _GAPS.findall(translated.strip(SEPARATOR)))
    lead = len(translated) - len(translated.lstrip(SEPARATOR))
    origins = list(itertools.accumulate(map(operator.add, lengths, gaps), initial=lead))[: len(lengths)]
    folded = translated.replace(SEPARATOR, "")
    if tables.multi_pattern.search(text) is None:
        starts = tuple(itertools.accumulate(lengths, initial=0))[:-1]
        return Folded(folded, starts, tuple(origins), (False,) * len(lengths))
    pieces = _split_expansions(translated, list(zip(origins, lengths, itertools.repeat(False))), tables)
    folded = tables.multi_pattern.sub(lambda m: tables.multi[m.group()], folded)
    starts = tuple(itertools.accumulate((length for _, length, _ in pieces), initial=0))[:-1]
    return Folded(folded, starts, tuple(p[0] for p in pieces), tuple(p[2] for p in pieces))


def _split_expansions(
    translated: str, pieces: list[tuple[int, int, bool]], tables: _Tables
) -> list[tuple[int, int, bool]]:
    """Cut the runs around characters that fold to several (e.g. "ß" to "ss")."""
    origins = [origin for origin, _, _ in pieces]
    for match in reversed(list(tables.multi_pattern.finditer(translated))):
        position = match.start()
        index = bisect.bisect_right(origins, position) - 1
        origin, length, _ = pieces[index]
        replacement = [(position, len(tables.multi[match.group()]), True)]
        if position > origin:
            replacement.insert(0, (origin, position - origin, False))
        if origin + length > position + 1:
            replacement.append((position + 1, origin + length - position - 1, False))
        pieces[index : index + 1] = replacement
        origins[index : index + 1] = [r[0] for r in replacement]
    return pieces


def fold_phrase(phrase: str) -> str:
    """The folded form of a phrase from a rule file (what the automaton stores)."""
    return fold(phrase).text
