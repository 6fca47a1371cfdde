"""SQLite's one-writer-at-a-time lock, with a lane for writes that someone is waiting on."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class WriteLock:
    """A FIFO lock where urgent holders (inbound messages) go before background work.

    Background writers (timers, SLA recomputation, the outbox) keep their order among
    themselves and run whenever no urgent writer waits; their transactions are kept short,
    so an urgent writer waits at most for the one in progress.
    """

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._background: deque[asyncio.Future[None]] = deque()

    @asynccontextmanager
    async def hold(self, *, urgent: bool = False) -> AsyncIterator[None]:
        """Hold the lock for the block."""
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    def locked(self) -> bool:
        """Whether someone holds the lock."""
        return self._held

    async def _acquire(self, urgent: bool) -> None:
        if not self._held and not self._urgent and not self._background:
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lane = self._urgent if urgent else self._background
        lane.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()
            elif waiter in lane:  # a release in between may have dropped it already
                lane.remove(waiter)
            raise

    def _release(self) -> None:
        for lane in (self._urgent, self._background):
            while lane:
                waiter = lane.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._held = False
