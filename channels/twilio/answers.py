"""The incoming-call answers already written: the same greeting, agents and window give the same TwiML."""

from __future__ import annotations

from collections.abc import Callable, Hashable

MAX_ANSWERS = 1000


class AnswerCache:
    """TwiML bodies by what they were built from, kept while the channel's settings object stays the same."""

    def __init__(self, size: int = MAX_ANSWERS) -> None:
        self.size = size
        self._settings: object = None
        self._bodies: dict[Hashable, bytes] = {}

    def get(self, settings: object, key: Hashable, build: Callable[[], str]) -> bytes:
        """The body for `key` under `settings`, built once."""
        if settings is not self._settings or len(self._bodies) >= self.size:
            self._settings = settings
            self._bodies.clear()
        body = self._bodies.get(key)
        if body is None:
            body = self._bodies[key] = build().encode()
        return body
