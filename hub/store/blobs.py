"""Out-of-line storage for attachments and raw messages, addressed by their SHA-256.

A blob is written to a temporary file, made durable, then renamed into place, so a blob
that exists is always whole. Many blobs at once (`BlobBatch`) share two file-system syncs
(Linux `syncfs`: before and after the renames) instead of one fsync each, which is several
times cheaper for a batch of mail. A batch writes its temporary files to a staging folder of
its own (under `.tmp`), so writing one batch never waits on the renames of another; a
blob's folders are made when it is renamed into place, so the process that writes a batch
(a parse worker) does not also pay for making them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import os
import re
import secrets
import tempfile
from pathlib import Path

from hub.errors import NotFound, PayloadTooLarge

SYNC_ONE_BY_ONE = 8
"""Batches smaller than this fsync each file (a whole-file-system sync costs more for a few)."""
STAGING = ".tmp"

_SHA256 = re.compile(r"[0-9a-f]{64}")


class BlobStore:
    """Content-addressed files under one directory; writing the same bytes twice is a no-op."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        """Where the blob with this hash lives."""
        if _SHA256.fullmatch(sha256) is None:
            raise NotFound(f"no blob {sha256!r}")
        return self.root / f"{sha256[:2]}/{sha256[2:4]}/{sha256}"

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

    def batch(self) -> BlobBatch:
        """A batch of blobs made durable together by `BlobBatch.commit`."""
        return BlobBatch(self)

    def _write(self, digest: str, data: bytes) -> None:
        target = self.path(digest)
        if target.exists():
            return
        tmp = _temporary(self.root / STAGING, data, fsync=True)
        _place(tmp, target)


class BlobBatch:
    """Blobs written together (blocking): `put` each, then `commit` before anything that refers
    to them is committed. Uncommitted blobs are temporary files, never visible. A batch pickles,
    so a worker process can write the blobs and the hub process commit them."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self._pending: dict[Path, Path] = {}
        self._staging = store.root / STAGING / secrets.token_hex(8)
        self._folders: set[Path] = set()

    def absorb(self, other: BlobBatch) -> None:
        """Take over another batch's uncommitted blobs (of the same store)."""
        for target, tmp in other._pending.items():
            if target in self._pending:
                tmp.unlink(missing_ok=True)
            else:
                self._pending[target] = tmp
        self._folders |= other._folders
        other._pending, other._folders = {}, set()

    def put(self, data: bytes, *, limit: int | None = None, what: str = "blob") -> str:
        """Write bytes (durable only after `commit`); return their hash; raise PayloadTooLarge."""
        if limit is not None and len(data) > limit:
            raise PayloadTooLarge(f"{what} is {len(data)} bytes, over the limit of {limit}")
        digest = hashlib.sha256(data).hexdigest()
        target = self.store.path(digest)
        if target not in self._pending and not target.exists():
            self._folders.add(self._staging)
            self._pending[target] = _temporary(self._staging, data, fsync=False)
        return digest

    def commit(self) -> None:
        """Make every blob durable and visible."""
        pending, self._pending = self._pending, {}
        try:
            self._commit(pending)
        finally:
            self._tidy()

    def _commit(self, pending: dict[Path, Path]) -> None:
        if not pending:
            return
        if len(pending) >= SYNC_ONE_BY_ONE and _syncfs(self.store.root):
            for target, tmp in pending.items():
                _place(tmp, target)
            if _syncfs(self.store.root):
                return
        else:
            for target, tmp in pending.items():
                _fsync(tmp)
                _place(tmp, target)
        for folder in {target.parent for target in pending}:
            _fsync(folder)

    def _tidy(self) -> None:
        """Remove this batch's staging folders (empty once committed or abandoned)."""
        folders, self._folders = self._folders, set()
        for folder in folders:
            with contextlib.suppress(OSError):
                folder.rmdir()

    def abandon(self) -> None:
        """Remove what was written and not committed."""
        pending, self._pending = self._pending, {}
        for tmp in pending.values():
            tmp.unlink(missing_ok=True)
        self._tidy()


def _temporary(folder: Path, data: bytes, *, fsync: bool) -> Path:
    """Write `data` to a new temporary file in a staging folder."""
    tmp, fd = _create(folder)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def _place(tmp: Path, target: Path) -> None:
    """Rename a temporary file to its blob's path, making the blob's folders if they are new."""
    try:
        os.replace(tmp, target)
    except FileNotFoundError:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)


def _create(folder: Path) -> tuple[Path, int]:
    """A new, empty temporary file in `folder`, opened for writing."""
    tmp = folder / f".tmp-{secrets.token_hex(8)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        return tmp, os.open(tmp, flags, 0o600)
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        pass
    fd, name = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    return Path(name), fd


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _syncfs(path: Path) -> bool:
    """Flush the file system holding `path` (Linux); False where that cannot be done."""
    syncfs = getattr(_LIBC, "syncfs", None) if _LIBC is not None else None
    if syncfs is None:
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        return bool(syncfs(fd) == 0)
    finally:
        os.close(fd)


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _libc()
