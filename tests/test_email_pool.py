"""The parser worker processes start with the parsers loaded and out of the garbage collector's sight."""

from __future__ import annotations

import asyncio
import gc
import os

import pytest

from channels.email import pool


@pytest.mark.parametrize("background", [False, True])
async def test_a_worker_freezes_the_parsers_it_imports_before_its_first_job(background: bool) -> None:
    workers = pool.workers(1, background=background)
    try:
        loop = asyncio.get_running_loop()
        frozen = await loop.run_in_executor(workers, gc.get_freeze_count)
        niceness = await loop.run_in_executor(workers, os.nice, 0)
    finally:
        workers.shutdown()
    assert frozen > 50_000
    assert niceness - os.nice(0) == (pool.NICENESS if background else 0)
