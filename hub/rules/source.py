"""Hot reload: the current rule set, replaced only by a new set that validates completely."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from hub.aio import cancel_and_wait
from hub.clock import Clock, utcnow
from hub.errors import RuleError
from hub.rules.loader import RuleSet, check_ruleset
from hub.rules.problems import RuleProblem, RuleSetInvalid

log = logging.getLogger(__name__)

Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True, slots=True)
class RuleStatus:
    """What the supervisor API shows: the loaded version and the last failed attempt, if any."""

    directory: str
    version: str | None
    loaded_at: datetime | None
    last_error: str | None
    problems: tuple[RuleProblem, ...]
    checked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "directory": self.directory,
            "version": self.version,
            "loaded_at": self.loaded_at.isoformat() if self.loaded_at else None,
            "last_error": self.last_error,
            "problems": [
                {"file": p.file, "line": p.line, "column": p.column, "key": p.key_path, "message": p.message}
                for p in self.problems
            ],
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
        }


class RuleSource:
    """Owns the current rule set of a folder and one background task that reloads it on change.

    The folder is polled every `poll_seconds` (names, sizes and modification times); a change
    loads the whole folder again, and the new set replaces the old one only if it validates.
    A failure is logged once per distinct set of problems and kept for `status()`.
    """

    def __init__(self, directory: Path, *, poll_seconds: float = 2.0, clock: Clock = utcnow) -> None:
        self.directory = directory
        self.poll_seconds = poll_seconds
        self.clock = clock
        self._current: RuleSet | None = None
        self._loaded_at: datetime | None = None
        self._checked_at: datetime | None = None
        self._problems: tuple[RuleProblem, ...] = ()
        self._last_error: str | None = None
        self._logged: tuple[RuleProblem, ...] | None = None
        self._fingerprint: Fingerprint | None = None
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[RuleSet], None]] = []

    @property
    def loaded(self) -> RuleSet | None:
        """The rule set in force, or None before the first successful load."""
        return self._current

    def on_change(self, listener: Callable[[RuleSet], None]) -> None:
        """Call `listener` with every rule set that comes into force (and the current one, if any)."""
        self._listeners.append(listener)
        if self._current is not None:
            listener(self._current)

    @property
    def current(self) -> RuleSet:
        """The rule set in force; raise RuleError if none was ever loaded."""
        if self._current is None:
            raise RuleError(f"the rules in {self.directory} have not been loaded")
        return self._current

    def status(self) -> RuleStatus:
        """The loaded version, when it was loaded, and the last error since."""
        return RuleStatus(
            directory=str(self.directory),
            version=self._current.version if self._current else None,
            loaded_at=self._loaded_at,
            last_error=self._last_error,
            problems=self._problems,
            checked_at=self._checked_at,
        )

    async def load(self) -> RuleSet:
        """Load the folder now; raise RuleSetInvalid if it has problems (the old set stays)."""
        await self.reload()
        if self._problems:
            raise RuleSetInvalid(self._problems)
        return self.current

    async def reload(self) -> bool:
        """Load the folder if it changed since the last look; return True if a new set is in force."""
        fingerprint = await asyncio.to_thread(_fingerprint, self.directory)
        if fingerprint == self._fingerprint and self._current is not None:
            return False
        ruleset, problems = await asyncio.to_thread(check_ruleset, self.directory)
        self._fingerprint = fingerprint
        self._checked_at = self.clock()
        if ruleset is None:
            self._problems = tuple(sorted(problems))
            self._last_error = str(RuleSetInvalid(problems))
            if self._problems != self._logged:
                self._logged = self._problems
                kept = f"; keeping version {self._current.version}" if self._current else ""
                log.error("rules in %s are invalid%s:\n%s", self.directory, kept, _lines(self._problems))
            return False
        self._problems, self._last_error, self._logged = (), None, None
        if self._current is not None and ruleset.version == self._current.version:
            return False
        for warning in ruleset.warnings:
            log.warning("%s", warning)
        previous = self._current
        self._current, self._loaded_at = ruleset, self.clock()
        if previous is not None:
            log.info("rules reloaded: version %s replaces %s", ruleset.version, previous.version)
        for listener in self._listeners:
            listener(ruleset)
        return True

    def start(self) -> None:
        """Start watching the folder."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch(), name="rules-reload")

    async def stop(self) -> None:
        """Stop watching."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.reload()
            except Exception:
                log.exception("checking the rules in %s failed; trying again", self.directory)


def _fingerprint(directory: Path) -> Fingerprint:
    if not directory.is_dir():
        return ()
    found = []
    for path in sorted(directory.rglob("*")):
        try:
            info = path.stat()
        except OSError:
            continue
        if path.is_file():
            found.append((path.relative_to(directory).as_posix(), info.st_size, info.st_mtime_ns))
    return tuple(found)


def _lines(problems: tuple[RuleProblem, ...]) -> str:
    return "\n".join(f"  {p}" for p in problems)
