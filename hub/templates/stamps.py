"""Which file a template lookup lands on now, and its state on disk, for callers that keep renders.

Missing candidates are passed over with `os.access`, a few times cheaper than a stat that fails.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

Stamp = tuple[int, int, int, int]
"""The found candidate's place in the search order, its inode, size and modification time (ns)."""


class TemplateStamps:
    """Stamps of template lookups: equal stamps mean a render would read the same, unchanged file."""

    def __init__(self, folders: Sequence[Path], candidates: Callable[..., Sequence[str]]) -> None:
        self.folders = tuple(folders)
        self.candidates = candidates
        self._paths: dict[tuple[str, ...], tuple[str, ...]] = {}

    def stamp(self, channel: str, name: str, lang: str, ext: str) -> Stamp | None:
        """The stamp of the file a render would use, or None if there is none."""
        key = (channel, name, lang, ext)
        paths = self._paths.get(key)
        if paths is None:
            relative = self.candidates(channel, name, lang, ext)
            paths = self._paths[key] = tuple(os.fspath(f / r) for f in self.folders for r in relative)
        for index, path in enumerate(paths):
            if not os.access(path, os.F_OK):
                continue
            try:
                found = os.stat(path)
            except OSError:
                continue
            if stat.S_ISREG(found.st_mode):
                return index, found.st_ino, found.st_size, found.st_mtime_ns
        return None
