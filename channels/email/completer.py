"""The full parse of mail that was stored from its headers, in the background.

A large sync stores mail from a headers-only parse (`parse.triage`), so the mailbox and its
cursor move at the speed of IMAP and the database. `Completer` then takes the account's
pending messages oldest first, a batch at a time, with their raw mail (kept with the message,
or in the blob store for older mail): the worker processes parse each fully and prepare its
attachments and search terms, and
`hub.content.complete` writes the batch in one transaction, which also hands the messages
to the triggers. It starts with whatever a crash left pending and wakes when a sync stores
more; it is owned by the channel and stopped with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from concurrent.futures import Executor
from datetime import datetime
from pathlib import Path

from channels.email import pool
from channels.email.imap.sync import Parse
from hub import content
from hub.aio import backoff, cancel_and_wait
from hub.content import Filled
from hub.inbox import Inbox
from hub.prepare import IngestLimits
from hub.store import BlobStore
from hub.store.blobs import BlobBatch

log = logging.getLogger(__name__)

BATCH = 200
SAFETY_SECONDS = 300.0

_Item = tuple[int, bytes | None, str | None, str | None, datetime]
"""A pending mail: message id, raw bytes if stored with it, else its blob's hash, mailbox, received at."""


class Completer:
    """Fills in one account's pending mail; owns one background task."""

    def __init__(
        self, inbox: Inbox, account: str, parse: Parse, executor: Executor | None = None, batch: int = BATCH
    ) -> None:
        self.inbox = inbox
        self.account = account
        self.parse = parse
        self.executor = executor
        self.batch = batch
        self.completed = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin with what is pending now, then wait for more."""
        if self._task is None or self._task.done():
            self.wake()
            self._task = asyncio.create_task(self._run(), name=f"mail-content-{self.account}")

    def wake(self) -> None:
        """More mail is pending."""
        self._idle.clear()
        self._wake.set()

    async def settled(self) -> None:
        """Wait until the background task has found nothing more pending."""
        await self._idle.wait()

    async def stop(self) -> None:
        """Stop after the batch in hand is abandoned (it stays pending and is done next time)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def drain(self) -> int:
        """Complete everything pending now, in this task; return how many."""
        done = 0
        while found := await self.run_once():
            done += found
        return done

    async def run_once(self) -> int:
        """Complete one batch; return how many messages it held (0: nothing pending)."""
        waiting = await content.pending(self.inbox.db, self.account, self.batch)
        if not waiting:
            return 0
        items: list[_Item] = [
            (p.message_id, p.raw, p.raw_sha256, p.meta.get("mailbox"), p.received_at) for p in waiting
        ]
        work = functools.partial(fill_batch, self.parse, self.inbox.blobs.root, self.inbox.limits)
        filled: list[Filled] = []
        blobs = self.inbox.blobs.batch()
        try:
            for done, written in await pool.spread(self.executor, work, items):
                filled.extend(done)
                blobs.absorb(written)
            await asyncio.to_thread(blobs.commit)
        finally:
            blobs.abandon()
        for f in filled:
            if f.error is not None:
                log.warning(
                    "%s: message %d could not be read in full: %s", self.account, f.message_id, f.error
                )
        self.completed += len(await content.complete(self.inbox, filled))
        return len(waiting)

    async def _run(self) -> None:
        failures = 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), SAFETY_SECONDS)
            self._wake.clear()
            try:
                await self.drain()
            except Exception:
                failures += 1
                log.exception("%s: filling in mail failed; trying again", self.account)
                await asyncio.sleep(backoff(failures, 1.0, 60.0))
                self._wake.set()
            else:
                failures = 0
                if not self._wake.is_set():
                    self._idle.set()


def fill_batch(
    parse: Parse, blob_root: Path, limits: IngestLimits, items: list[_Item]
) -> tuple[list[Filled], BlobBatch]:
    """Read, parse and prepare pending mail (blocking; runs in a worker process or a thread);
    the blobs written are for the caller to commit."""
    store = BlobStore(blob_root)
    blobs = store.batch()
    out: list[Filled] = []
    try:
        for message_id, raw, sha, mailbox, received_at in items:
            if raw is None and sha is None:
                out.append(Filled(message_id, error="the raw mail was not kept"))
                continue
            try:
                data = raw if raw is not None else store.path(str(sha)).read_bytes()
                message = parse(data, mailbox, received_at=received_at)
                out.append(content.fill(blobs, limits, message_id, message))
            except Exception as err:  # noqa: BLE001
                out.append(Filled(message_id, error=f"{type(err).__name__}: {err}".splitlines()[0]))
    except BaseException:
        blobs.abandon()
        raise
    return out, blobs
