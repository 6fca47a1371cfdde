"""What the benchmarks measure alike: another process's CPU time (Linux), its settling, and percentiles."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """User plus system CPU time of the `postgres` processes on this machine (0 if none): the running
    ones' own and that of the children they reaped (the server's backends that ended meanwhile)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, _, rest = text.partition(" (")[2].rpartition(") ")
        if name == "postgres":
            fields = rest.split()
            total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


async def settled(
    pid: int, quiet: float = 0.05, step: float = 0.5, most: float = 60.0
) -> tuple[float, float]:
    """Wait until a process uses under `quiet` of a core for `step` seconds (the work it put off is
    done); return the seconds that took, without the quiet step, and the CPU seconds it used."""
    began = time.monotonic()
    start = cpu_seconds(pid)
    while True:
        before = cpu_seconds(pid)
        await asyncio.sleep(step)
        used = cpu_seconds(pid) - before
        if used < quiet * step or time.monotonic() - began > most:
            return max(0.0, time.monotonic() - began - step), cpu_seconds(pid) - start


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of seconds, in milliseconds (0 for no values)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000 if ordered else 0.0
