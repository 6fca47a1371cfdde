"""Small asyncio helpers shared by the hub's long-running parts."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any


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
