"""A small in-memory throttle for failed logins, per client address and user name, and per address."""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime, timedelta

from aiohttp import web

from hub.clock import Clock

MAX_KEYS = 10_000


class LoginThrottle:
    """Allows `limit` failures per key within `window`; then refuses until the oldest expires."""

    def __init__(self, clock: Clock, limit: int = 10, window: timedelta = timedelta(minutes=5)) -> None:
        self.clock = clock
        self.limit = limit
        self.window = window
        self._failures: dict[tuple[str, str], deque[datetime]] = {}

    def retry_after(self, key: tuple[str, str], limit: int | None = None) -> int | None:
        """Seconds until the key may try again, or None if it may try now."""
        failures = self._recent(key) if key in self._failures else deque()
        if len(failures) < (limit or self.limit):
            return None
        wait = failures[0] + self.window - self.clock()
        return max(1, math.ceil(wait.total_seconds()))

    def failed(self, key: tuple[str, str]) -> None:
        """Count one failed attempt."""
        if key not in self._failures and len(self._failures) >= MAX_KEYS:
            self._prune()
        self._recent(key).append(self.clock())

    def succeeded(self, key: tuple[str, str]) -> None:
        """Forget the key's failures."""
        self._failures.pop(key, None)

    def forgive_one(self, key: tuple[str, str]) -> None:
        """Take back the latest attempt counted for the key (it turned out to succeed)."""
        failures = self._failures.get(key)
        if failures:
            failures.pop()

    def _recent(self, key: tuple[str, str]) -> deque[datetime]:
        failures = self._failures.setdefault(key, deque())
        cutoff = self.clock() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        return failures

    def _prune(self) -> None:
        cutoff = self.clock() - self.window
        for key in [k for k, v in self._failures.items() if not v or v[-1] <= cutoff]:
            del self._failures[key]
        while len(self._failures) >= MAX_KEYS:
            del self._failures[next(iter(self._failures))]


THROTTLE = web.AppKey("login_throttle", LoginThrottle)
