"""Run a real `omnihub run` process for tests: start, wait until it serves, signal, kill."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVING = re.compile(rb"serving on http://([\d.]+):(\d+)")
READER_GRACE = 2.0


def write_config(path: Path, data: dict[str, Any]) -> Path:
    """Write a small omnihub.toml from nested dicts (tables and arrays of tables)."""
    lines: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            lines.extend(f"{k} = {_toml(v)}" for k, v in value.items())
        elif isinstance(value, list):
            for item in value:
                lines.append(f"[[{key}]]")
                lines.extend(f"{k} = {_toml(v)}" for k, v in item.items())
        else:
            lines.insert(0, f"{key} = {_toml(value)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tomllib.loads(path.read_text(encoding="utf-8"))
    return path


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class HubProcess:
    """One `python -m hub run` child process."""

    config: Path
    proc: asyncio.subprocess.Process | None = None
    url: str = ""
    stderr: bytearray = field(default_factory=bytearray)
    _reader: asyncio.Task[None] | None = None

    async def start(self, within: float = 30) -> str:
        """Start the process and return its base URL once it serves."""
        self.stderr.clear()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hub",
            "--config",
            str(self.config),
            "run",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        self._reader = asyncio.create_task(self._read())
        async with asyncio.timeout(within):
            while True:
                found = SERVING.search(self.stderr)
                if found:
                    self.url = f"http://{found.group(1).decode()}:{found.group(2).decode()}"
                    return self.url
                if self.proc.returncode is not None:
                    raise RuntimeError(f"hub exited early:\n{self.stderr.decode(errors='replace')}")
                await asyncio.sleep(0.05)

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(65536):
            self.stderr.extend(chunk)

    async def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up."""
        assert self.proc is not None
        self.proc.kill()
        await self.wait(10)

    async def terminate(self, within: float) -> int:
        """SIGTERM and wait for the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await self.wait(within)

    async def wait(self, within: float) -> int:
        """Wait for the process to end; return its exit code."""
        assert self.proc is not None
        async with asyncio.timeout(within):
            code = await self.proc.wait()
        if self._reader is not None:
            await asyncio.wait({self._reader}, timeout=READER_GRACE)
            self._reader.cancel()
        return code

    async def ensure_stopped(self) -> None:
        """Kill the process if a test left it running."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            await asyncio.wait({self._reader}, timeout=READER_GRACE)
            self._reader.cancel()

    @property
    def log(self) -> str:
        """What the process wrote to stderr."""
        return self.stderr.decode(errors="replace")
