"""Rate limits for anonymous visitors: messages per minute per visitor, sockets per address."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0


class MessageLimiter:
    """At most `per_minute` messages from one visitor in any sliding minute."""

    def __init__(self, per_minute: int, now: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.now = now
        self._sent: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, visitor: str) -> bool:
        """Count a message; False if it is over the limit (and then it is not counted)."""
        now = self.now()
        sent = self._sent[visitor]
        while sent and now - sent[0] >= WINDOW_SECONDS:
            sent.popleft()
        if len(sent) >= self.per_minute:
            return False
        sent.append(now)
        return True

    def forget(self, visitor: str) -> None:
        """Drop a visitor's history once they leave and their window has passed."""
        sent = self._sent.get(visitor)
        if sent is not None and (not sent or self.now() - sent[-1] >= WINDOW_SECONDS):
            del self._sent[visitor]


class ConnectionCounter:
    """Open sockets per client address, to refuse one address opening too many."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = defaultdict(int)

    def acquire(self, address: str) -> bool:
        """Count a new socket; False if the address already has `limit` open."""
        if self._open[address] >= self.limit:
            return False
        self._open[address] += 1
        return True

    def release(self, address: str) -> None:
        """A socket closed."""
        self._open[address] -= 1
        if self._open[address] <= 0:
            del self._open[address]
