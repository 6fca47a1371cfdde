"""The inbound pipeline: deduplicate, resolve contacts, thread and store, a batch per transaction.

`IngestPipeline.ingest_many` does a whole batch in a handful of statements. `GroupCommitter`
gathers messages that arrive together (webhooks, an IMAP fetch) into such batches, so each
caller of `ingest` is answered once its message is committed while the database sees a
few large transactions instead of many small ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import contacts
from hub.clock import Clock, utcnow
from hub.events import EventBus, event_row, record
from hub.models import (
    ConversationStatus,
    Direction,
    Identity,
    InboundMessage,
    IngestResult,
    Priority,
)
from hub.prepare import IngestLimits, Prepared, prepare_batch
from hub.store import BlobStore, Database, ids, schema
from hub.store.search import index_messages

log = logging.getLogger(__name__)

TOKEN = re.compile(r"\[#(\d{1,18})\]")
RETRIES_ON_CONFLICT = 3


class IngestPipeline:
    """Stores inbound messages exactly once and threads them into conversations."""

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        bus: EventBus,
        limits: IngestLimits | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.bus = bus
        self.limits = limits or IngestLimits()
        self.clock = clock

    async def ingest_many(self, batch: Sequence[InboundMessage]) -> list[IngestResult]:
        """Store a batch in one transaction; the results are in the batch's order."""
        return await self.store(await self.prepare(batch))

    async def prepare(self, batch: Sequence[InboundMessage]) -> list[Prepared]:
        """The work that needs no database, in a thread while the loop commits the previous batch."""
        return await asyncio.to_thread(prepare_batch, self.blobs.root, self.limits, list(batch))

    async def store(self, prepared: list[Prepared]) -> list[IngestResult]:
        """Store prepared messages in one transaction, retried if another writer raced us."""
        for attempt in range(RETRIES_ON_CONFLICT):
            try:
                async with self.db.write() as conn:
                    results, events = await self._store(conn, prepared)
            except IntegrityError:
                if attempt == RETRIES_ON_CONFLICT - 1:
                    raise
                log.debug("ingest raced another writer; retrying the batch")
                continue
            self.bus.publish(events)
            return results
        raise AssertionError("unreachable")

    async def _store(
        self, conn: AsyncConnection, batch: list[Prepared]
    ) -> tuple[list[IngestResult], list[dict[str, Any]]]:
        now = self.clock()
        results: list[IngestResult | None] = [None] * len(batch)
        existing = await self._existing(conn, [p.message for p in batch])
        fresh: list[int] = []
        first_of_key: dict[tuple[str, str], int] = {}
        for index, p in enumerate(batch):
            key = (p.message.channel_account, p.message.external_id)
            if key in existing:
                mid, cid, contact_id = existing[key]
                results[index] = IngestResult(mid, cid, contact_id, duplicate=True, new_conversation=False)
            elif key in first_of_key:
                continue
            else:
                first_of_key[key] = index
                fresh.append(index)

        wanted: dict[Identity, tuple[str | None, str | None]] = {}
        for index in fresh:
            m = batch[index].message
            wanted.setdefault(m.sender, (m.sender_name, m.language))
        contact_of = await contacts.resolve(conn, wanted, now)
        threads = await _ThreadIndex.load(
            conn, [batch[i].message for i in fresh], contact_of, now - self.limits.thread_window
        )

        new_conversations: list[dict[str, Any]] = []
        placement: list[tuple[int, int | None, int | None]] = []
        for index in fresh:
            m = batch[index].message
            contact_id = contact_of[m.sender]
            conv = threads.find(m, contact_id)
            if conv is None:
                new_slot = len(new_conversations)
                new_conversations.append(
                    {
                        "contact_id": contact_id,
                        "channel": m.channel.value,
                        "channel_account": m.channel_account,
                        "subject": m.subject,
                        "status": ConversationStatus.OPEN.value,
                        "priority": Priority.NORMAL.value,
                        "created_at": now,
                        "updated_at": now,
                        "last_message_at": m.received_at,
                        "last_inbound_at": m.received_at,
                    }
                )
                threads.remember(m, contact_id, -1 - new_slot)
                placement.append((index, None, new_slot))
            else:
                threads.remember(m, contact_id, conv)
                placement.append((index, conv, None))

        for index, conv, slot in placement:
            at = batch[index].message.received_at
            if conv is not None and conv < 0:
                slot = -1 - conv
            if slot is not None:
                row = new_conversations[slot]
                row["last_message_at"] = row["last_inbound_at"] = max(row["last_message_at"], at)
        new_ids = await ids.reserve(conn, schema.conversations, len(new_conversations))
        if new_conversations:
            await conn.execute(
                insert(schema.conversations),
                [{**row, "id": cid} for row, cid in zip(new_conversations, new_ids, strict=True)],
            )

        def conversation_id(conv: int | None, slot: int | None) -> int:
            if slot is not None:
                return new_ids[slot]
            assert conv is not None
            return new_ids[-1 - conv] if conv < 0 else conv

        message_rows: list[dict[str, Any]] = []
        for index, conv, slot in placement:
            p = batch[index]
            m = p.message
            meta = dict(m.meta)
            if p.notes:
                meta["ingest_notes"] = p.notes
            if m.sender_name:
                meta.setdefault("sender_name", m.sender_name)
            message_rows.append(
                {
                    "conversation_id": conversation_id(conv, slot),
                    "direction": Direction.INBOUND.value,
                    "channel": m.channel.value,
                    "channel_account": m.channel_account,
                    "external_id": m.external_id,
                    "sender": m.sender.address,
                    "subject": m.subject,
                    "text": m.text,
                    "html": m.html,
                    "raw_sha256": p.raw_sha256,
                    "meta": meta,
                    "created_at": m.received_at,
                }
            )
        message_ids = await ids.reserve(conn, schema.messages, len(message_rows))
        if message_rows:
            await conn.execute(
                insert(schema.messages),
                [{**row, "id": mid} for row, mid in zip(message_rows, message_ids, strict=True)],
            )

        refs: list[dict[str, Any]] = []
        attachment_rows: list[dict[str, Any]] = []
        terms: list[dict[str, Any]] = []
        for (index, _, _), row, mid in zip(placement, message_rows, message_ids, strict=True):
            p = batch[index]
            refs.extend(
                {"ref": ref, "conversation_id": row["conversation_id"], "message_id": mid}
                for ref in dict.fromkeys(p.message.own_refs)
            )
            attachment_rows.extend({**a, "message_id": mid} for a in p.attachments)
            terms.append({"id": mid, "terms": p.terms})
        if refs:
            await conn.execute(_insert_ignore(conn, schema.message_refs), refs)
        if attachment_rows:
            await conn.execute(insert(schema.attachments), attachment_rows)
        await index_messages(conn, terms)

        created = set(new_ids)
        reopened = await self._touch_conversations(
            conn, [r for r in message_rows if r["conversation_id"] not in created], now
        )
        audit = [event_row("conversation.reopened", now, cid) for cid in sorted(reopened)]
        await record(conn, audit)
        events = [
            event_row("conversation.created", now, new_ids[slot])
            for _, _, slot in placement
            if slot is not None
        ]
        events.extend(audit)

        for (index, _, placed_new), row, mid in zip(placement, message_rows, message_ids, strict=True):
            cid = row["conversation_id"]
            contact_id = contact_of[batch[index].message.sender]
            results[index] = IngestResult(
                mid,
                cid,
                contact_id,
                duplicate=False,
                new_conversation=placed_new is not None,
                reopened=cid in reopened,
            )
            events.append(event_row("message.received", now, cid, message_id=mid, channel=row["channel"]))
        for index, p in enumerate(batch):
            if results[index] is None:
                first = results[first_of_key[(p.message.channel_account, p.message.external_id)]]
                assert first is not None
                results[index] = IngestResult(
                    first.message_id,
                    first.conversation_id,
                    first.contact_id,
                    duplicate=True,
                    new_conversation=False,
                )
        final = [r for r in results if r is not None]
        assert len(final) == len(batch)
        return final, events

    async def _existing(
        self, conn: AsyncConnection, batch: list[InboundMessage]
    ) -> dict[tuple[str, str], tuple[int, int, int]]:
        m, c = schema.messages, schema.conversations
        keys = {(x.channel_account, x.external_id) for x in batch}
        rows = (
            await conn.execute(
                select(m.c.channel_account, m.c.external_id, m.c.id, m.c.conversation_id).where(
                    m.c.external_id.in_({k[1] for k in keys}), m.c.channel_account.in_({k[0] for k in keys})
                )
            )
        ).all()
        found = [r for r in rows if (r.channel_account, r.external_id) in keys]
        if not found:
            return {}
        owners = dict(
            (
                await conn.execute(
                    select(c.c.id, c.c.contact_id).where(c.c.id.in_({r.conversation_id for r in found}))
                )
            ).all()
        )
        return {
            (r.channel_account, r.external_id): (r.id, r.conversation_id, owners[r.conversation_id])
            for r in found
        }

    async def _touch_conversations(
        self, conn: AsyncConnection, message_rows: list[dict[str, Any]], now: datetime
    ) -> set[int]:
        latest: dict[int, datetime] = {}
        for row in message_rows:
            cid = row["conversation_id"]
            latest[cid] = max(latest.get(cid, row["created_at"]), row["created_at"])
        if not latest:
            return set()
        c = schema.conversations
        rows = await conn.execute(
            select(c.c.id, c.c.status, c.c.last_message_at).where(c.c.id.in_(list(latest)))
        )
        updates, reopened = [], set()
        for r in rows:
            last = max(latest[r.id], r.last_message_at) if r.last_message_at else latest[r.id]
            if r.status != ConversationStatus.OPEN.value:
                reopened.add(r.id)
            updates.append({"cid": r.id, "last": last, "now": now})
        await conn.execute(
            update(c)
            .where(c.c.id == bindparam("cid"))
            .values(
                last_message_at=bindparam("last"),
                last_inbound_at=bindparam("last"),
                updated_at=bindparam("now"),
                status=ConversationStatus.OPEN.value,
                snoozed_until=None,
            ),
            updates,
        )
        return reopened


class _ThreadIndex:
    """Which conversation each message of a batch belongs to, from three lookups."""

    def __init__(
        self, by_ref: dict[str, int], token_owner: dict[int, int], open_conv: dict[tuple[int, str, str], int]
    ) -> None:
        self.by_ref = by_ref
        self.token_owner = token_owner
        self.open_conv = open_conv

    @classmethod
    async def load(
        cls,
        conn: AsyncConnection,
        batch: list[InboundMessage],
        contact_of: dict[Any, int],
        window_start: datetime,
    ) -> _ThreadIndex:
        refs = list({r for m in batch for r in m.reply_refs})
        by_ref: dict[str, int] = {}
        if refs:
            rows = await conn.execute(
                select(schema.message_refs.c.ref, schema.message_refs.c.conversation_id).where(
                    schema.message_refs.c.ref.in_(refs)
                )
            )
            by_ref = {r.ref: r.conversation_id for r in rows}
        tokens = {int(t) for m in batch if m.subject for t in TOKEN.findall(m.subject)}
        c = schema.conversations
        token_owner: dict[int, int] = {}
        if tokens:
            rows = await conn.execute(select(c.c.id, c.c.contact_id).where(c.c.id.in_(tokens)))
            token_owner = {r.id: r.contact_id for r in rows}
        chatty = {contact_of[m.sender] for m in batch if m.channel.is_conversational}
        open_conv: dict[tuple[int, str, str], int] = {}
        if chatty:
            rows = await conn.execute(
                select(c.c.id, c.c.contact_id, c.c.channel, c.c.channel_account)
                .where(
                    c.c.contact_id.in_(chatty),
                    c.c.status != ConversationStatus.RESOLVED.value,
                    c.c.last_message_at >= window_start,
                )
                .order_by(c.c.last_message_at)
            )
            open_conv = {(r.contact_id, r.channel, r.channel_account): r.id for r in rows}
        return cls(by_ref, token_owner, open_conv)

    def find(self, m: InboundMessage, contact_id: int) -> int | None:
        """The conversation id for a message (negative: one created earlier in this batch)."""
        for ref in reversed(m.reply_refs):
            if ref in self.by_ref:
                return self.by_ref[ref]
        if m.subject:
            for token in TOKEN.findall(m.subject):
                if self.token_owner.get(int(token)) == contact_id:
                    return int(token)
        if m.channel.is_conversational:
            return self.open_conv.get((contact_id, m.channel.value, m.channel_account))
        return None

    def remember(self, m: InboundMessage, contact_id: int, conversation: int) -> None:
        """Let later messages of the batch thread where `m` went (negative: created in the batch)."""
        for ref in m.own_refs:
            self.by_ref.setdefault(ref, conversation)
        if m.channel.is_conversational:
            self.open_conv[(contact_id, m.channel.value, m.channel_account)] = conversation


def _insert_ignore(conn: AsyncConnection, table: Any) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()


class GroupCommitter:
    """Batches concurrent `ingest` calls into shared transactions; owns one background task."""

    def __init__(self, pipeline: IngestPipeline, max_batch: int = 2000) -> None:
        self.pipeline = pipeline
        self.max_batch = max_batch
        self._queue: list[tuple[InboundMessage, asyncio.Future[IngestResult]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        """Whether the background task is taking messages."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the background task."""
        if not self.running:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="ingest-group-commit")

    async def stop(self) -> None:
        """Commit everything already submitted, then end the task."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def submit(self, message: InboundMessage) -> IngestResult:
        """Queue a message and wait until it is committed (or its batch failed)."""
        if not self.running or self._stopping:
            return (await self.pipeline.ingest_many([message]))[0]
        future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        self._queue.append((message, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        ahead: asyncio.Task[list[Prepared]] | None = None
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

    def _take(self) -> list[tuple[InboundMessage, asyncio.Future[IngestResult]]]:
        batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        return batch

    async def _prepare(
        self, batch: list[tuple[InboundMessage, asyncio.Future[IngestResult]]]
    ) -> list[Prepared]:
        try:
            return await self.pipeline.prepare([m for m, _ in batch])
        except Exception:
            log.exception("preparing a batch of %d failed", len(batch))
            return []

    async def _commit(
        self,
        batch: list[tuple[InboundMessage, asyncio.Future[IngestResult]]],
        prepared: list[Prepared] | None = None,
    ) -> None:
        try:
            if not prepared:
                prepared = await self.pipeline.prepare([m for m, _ in batch])
            results = await self.pipeline.store(prepared)
        except Exception as err:
            if len(batch) > 1:
                log.warning("a batch of %d failed; committing its messages one by one", len(batch))
                for item in batch:
                    await self._commit([item])
                return
            log.exception("ingest failed for %s", batch[0][0].external_id)
            if not batch[0][1].done():
                batch[0][1].set_exception(err)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
