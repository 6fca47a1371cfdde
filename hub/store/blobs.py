"""Out-of-line storage for attachments and raw messages, addressed by their SHA-256."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from pathlib import Path

from hub.errors import NotFound, PayloadTooLarge


class BlobStore:
    """Content-addressed files under one directory; writing the same bytes twice is a no-op."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        """Where the blob with this hash lives."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise NotFound(f"no blob {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    async def put(self, data: bytes, *, limit: int | None = None, what: str = "blob") -> str:
        """Store bytes and return their hash; raise PayloadTooLarge over `limit`."""
        return await asyncio.to_thread(self.put_blocking, data, limit=limit, what=what)

    def put_blocking(self, data: bytes, *, limit: int | None = None, what: str = "blob") -> str:
        """`put` for code already running in a worker thread."""
        if limit is not None and len(data) > limit:
            raise PayloadTooLarge(f"{what} is {len(data)} bytes, over the limit of {limit}")
        digest = hashlib.sha256(data).hexdigest()
        self._write(digest, data)
        return digest

    async def get(self, sha256: str) -> bytes:
        """Read a blob back."""
        try:
            return await asyncio.to_thread(self.path(sha256).read_bytes)
        except FileNotFoundError as err:
            raise NotFound(f"no blob {sha256}") from err

    def _write(self, digest: str, data: bytes) -> None:
        target = self.path(digest)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
