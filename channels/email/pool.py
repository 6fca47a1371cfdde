"""Where the CPU-heavy part of reading mail runs: pools of worker processes, or a thread.

A channel has two pools: readers at normal priority (what a mailbox sync must read before
it can store), and fillers at a lower priority (the full parse of mail stored from its
headers), so a backlog being filled in never slows down pulling mail or answering agents.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import importlib
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

JOBS = 4
NICENESS = 5
PRELOADED = "channels.email.channel"


def workers(count: int, *, background: bool = False) -> ProcessPoolExecutor:
    """A pool of `count` parser processes (spawned, so nothing of the event loop is inherited);
    `background` ones run at a lower priority."""
    return ProcessPoolExecutor(
        count,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_background if background else _start,
    )


def _start() -> None:
    """Import the parsers and move what exists then out of the garbage collector's sight:
    a worker's full collections would otherwise walk ~180,000 module objects (~100 ms) each."""
    importlib.import_module(PRELOADED)
    gc.collect()
    gc.freeze()


def _start_background() -> None:
    """Niced: a small share beside the pull and the web app, but never none (idle scheduling
    could leave a busy hub's mail without its content for as long as the load lasts)."""
    os.nice(NICENESS)
    _start()


async def spread(executor: Executor | None, work: Callable[[list[T]], R], items: Sequence[T]) -> list[R]:
    """`work` over `items` in `JOBS` pieces across the worker processes (or over all of them in
    one thread without workers); one result per piece, in order. `work` must pickle."""
    if not items:
        return []
    if executor is None:
        return [await asyncio.to_thread(work, list(items))]
    loop = asyncio.get_running_loop()
    size = max(1, -(-len(items) // JOBS))
    return list(
        await asyncio.gather(
            *(
                loop.run_in_executor(executor, functools.partial(work, list(items[i : i + size])))
                for i in range(0, len(items), size)
            )
        )
    )
