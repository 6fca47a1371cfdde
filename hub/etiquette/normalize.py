"""Text folded for phrase matching, with a map from every folded character back to the original.

Folding is NFKC (full-width to half-width), case folding, and dropping separators (spaces,
line breaks, punctuation other than `?` and `!`, format characters), so that "I don't-know",
"I  DON'T know", "我、不、知道" and the same in full-width letters fold to the same letters. Dropped
separators are remembered so that English phrases can still require word boundaries.
"""

from __future__ import annotations

import bisect
import functools
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


_GAPS = re.compile(f"{SEPARATOR}+")


def fold(text: str) -> Folded:
    """Fold `text` for matching, keeping the map back to its original offsets."""
    tables = _tables()
    if tables.multi_pattern.search(text):
        return _fold_slowly(text, tables)
    translated = text.translate(tables.single)
    starts: list[int] = []
    origins: list[int] = []
    position = 0
    folded_length = 0
    for gap in _GAPS.finditer(translated):
        if gap.start() > position:
            starts.append(folded_length)
            origins.append(position)
            folded_length += gap.start() - position
        position = gap.end()
    if position < len(translated):
        starts.append(folded_length)
        origins.append(position)
    folded = translated.replace(SEPARATOR, "")
    return Folded(folded, tuple(starts), tuple(origins), (False,) * len(starts))


def _fold_slowly(text: str, tables: _Tables) -> Folded:
    parts: list[str] = []
    starts: list[int] = []
    origins: list[int] = []
    expanded: list[bool] = []
    length = 0
    previous_origin = -2
    for index, char in enumerate(text):
        piece = tables.multi.get(char)
        if piece is None:
            piece = tables.single.get(ord(char), char)
            if piece == SEPARATOR:
                continue
            if previous_origin != index - 1 or (expanded and expanded[-1]):
                starts.append(length)
                origins.append(index)
                expanded.append(False)
        else:
            starts.append(length)
            origins.append(index)
            expanded.append(True)
        parts.append(piece)
        length += len(piece)
        previous_origin = index
    return Folded("".join(parts), tuple(starts), tuple(origins), tuple(expanded))


def fold_phrase(phrase: str) -> str:
    """The folded form of a phrase from a rule file (what the automaton stores)."""
    return fold(phrase).text
