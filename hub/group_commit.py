"""Group commit: concurrent `ingest` calls share transactions.

Each caller waits until its own message is committed, while the database sees a few large
transactions instead of many small ones. The next batch is prepared (blobs, search terms)
in a thread while the current one commits. At most `max_pending` messages wait at once;
further callers wait for room, which pushes back on whoever sends too fast.
"""

from __future__ import annotations

import asyncio
import logging

from hub.ingest import IngestPipeline
from hub.models import InboundMessage, IngestResult
from hub.prepare import Prepared

log = logging.getLogger(__name__)

Pending = tuple[InboundMessage, "asyncio.Future[IngestResult]"]


class GroupCommitter:
    """Batches concurrent ingests; owns one background task."""

    def __init__(self, pipeline: IngestPipeline, max_batch: int = 2000, max_pending: int = 20_000) -> None:
        self.pipeline = pipeline
        self.max_batch = max_batch
        self._room = asyncio.Semaphore(max_pending)
        self._queue: list[Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        """Whether the background task is taking messages."""
        return self._task is not None and not self._task.done() and not self._stopping

    def start(self) -> None:
        """Start the background task."""
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="ingest-group-commit")

    async def stop(self) -> None:
        """Commit everything already submitted, then end the task."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        await asyncio.wait({task})

    async def submit(self, message: InboundMessage) -> IngestResult:
        """Queue a message and wait until it is committed; raise if it could not be stored."""
        if not self.running:
            return await self.pipeline.ingest_one(message)
        async with self._room:
            future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
            self._queue.append((message, future))
            self._wake.set()
            return await future

    async def _run(self) -> None:
        ahead: asyncio.Task[list[Prepared] | None] | None = None
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                current = self._take()
                while current:
                    prepared = await ahead if ahead is not None else await self._prepare(current)
                    following = self._take()
                    ahead = asyncio.create_task(self._prepare(following)) if following else None
                    await self._commit(current, prepared)
                    current = following
                if self._stopping:
                    return
        finally:
            if ahead is not None:
                ahead.cancel()
                await asyncio.wait({ahead})
            for _, future in self._queue:
                if not future.done():
                    future.set_exception(RuntimeError("the inbox stopped before this message was stored"))
            self._queue.clear()

    def _take(self) -> list[Pending]:
        batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        return batch

    async def _prepare(self, batch: list[Pending]) -> list[Prepared] | None:
        try:
            return await self.pipeline.prepare([m for m, _ in batch])
        except Exception:
            log.exception("preparing a batch of %d failed; its messages go one by one", len(batch))
            return None

    async def _commit(self, batch: list[Pending], prepared: list[Prepared] | None) -> None:
        if prepared is not None:
            try:
                results = await self.pipeline.store(prepared)
            except Exception:
                log.warning(
                    "a batch of %d failed; storing its messages one by one", len(batch), exc_info=True
                )
            else:
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
                return
        for message, future in batch:
            try:
                result = await self.pipeline.ingest_one(message)
            except Exception as err:  # noqa: BLE001
                if not future.done():
                    future.set_exception(err)
            else:
                if not future.done():
                    future.set_result(result)
