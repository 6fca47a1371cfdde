"""Small asyncio helpers shared by the hub's long-running parts."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel a task and wait until it has ended, without swallowing our own cancellation."""
    if task is None or task.done():
        return
    task.cancel()
    await asyncio.wait({task})
