"""Small asyncio helpers shared by the hub's long-running parts."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel a task and wait until it has ended, without swallowing our own cancellation."""
    if task is None or task.done():
        return
    task.cancel()
    await asyncio.wait({task})


def backoff(attempt: int, base: float, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait before try `attempt + 1`: full jitter over an exponential ceiling."""
    ceiling = min(cap, base * (2 ** max(attempt - 1, 0)))
    return float(max(base / 2, ceiling * rng()))


class OwnedTasks:
    """Background work a service owns: started with `spawn`, awaited with `drain`, ended by `stop`."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run `work` until it finishes or the owner stops; a failure is logged, not lost."""
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s work %s failed", self.what, task.get_name(), exc_info=task.exception())

    async def drain(self) -> None:
        """Wait for the work in progress."""
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Let the work in progress finish for a while, then cancel what is left."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace_seconds)
        left = set(self._tasks)
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)


async def in_timed_chunks(
    items: Sequence[T],
    work: Callable[[Sequence[T]], Awaitable[R]],
    *,
    budget: float,
    first: int,
    most: int,
    lanes: int = 1,
) -> list[R]:
    """Run `work` over consecutive chunks of `items`, each sized to take about `budget` seconds.

    For write transactions: each chunk commits within about the budget, so that other
    writers waiting for SQLite's single write lock (inbound messages) get it in between.
    With `lanes` above 1, that many chunks are worked on at once (for independent
    transactions on a database that runs them side by side: one's statements run while
    another's rows are computed); the first failure cancels the others and is raised.
    Results are in the order of the chunks.
    """
    results: dict[int, R] = {}
    start, size = 0, max(1, min(first, most))

    async def lane() -> None:
        nonlocal start, size
        while start < len(items):
            at = start
            chunk = items[at : at + size]
            start += len(chunk)
            began = time.perf_counter()
            results[at] = await work(chunk)
            spent = max(time.perf_counter() - began, 1e-6)
            size = max(1, min(most, int(len(chunk) * budget / spent)))

    if lanes <= 1:
        await lane()
    else:
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(lanes):
                    group.create_task(lane())
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from failed
    return [results[at] for at in sorted(results)]
