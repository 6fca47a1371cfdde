"""The inbound pipeline: deduplicate, resolve contacts, thread and store, a batch per transaction.

`IngestPipeline.store` writes a whole batch in a handful of statements. A message that
cannot be stored even on its own (not because the database is away, but because of what it
contains) is quarantined with its bytes, and the caller is told so with `Quarantined`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, text
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import contacts, content, quarantine
from hub.clock import Clock, utcnow
from hub.errors import HubError
from hub.events import EventBus, event_row, record
from hub.models import ConversationStatus, Direction, Identity, InboundMessage, IngestResult, Priority
from hub.prepare import IngestLimits, Prepared, prepare_batch
from hub.rules import queue as rule_queue
from hub.store import BlobStore, Database, bulk, ids, schema
from hub.store.search import index_messages
from hub.store.upsert import insert_ignore
from hub.threads import NewConversation, Target, ThreadIndex, target_id

log = logging.getLogger(__name__)

RETRIES_ON_CONFLICT = 3
TRANSIENT = (OperationalError, InterfaceError, OSError, TimeoutError)
CONTACT_LOCKS = 0x636F6E74

TxHook = Callable[[AsyncConnection, list[IngestResult]], Awaitable[None]]
"""Extra writes committed in the same transaction as a batch (e.g. a mail cursor advancing)."""


class Quarantined(HubError):
    """The message was kept in quarantine instead of the inbox; `quarantine_id` says where."""

    def __init__(self, quarantine_id: int, reason: str) -> None:
        super().__init__(f"quarantined as {quarantine_id}: {reason}")
        self.quarantine_id = quarantine_id
        self.reason = reason


@dataclass(slots=True)
class _Placed:
    prepared: Prepared
    index: int
    contact_id: int
    target: Target
    message_id: int = 0

    @property
    def conversation_id(self) -> int:
        return target_id(self.target)


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

    async def ingest_many(
        self, batch: Sequence[InboundMessage], *, in_transaction: TxHook | None = None
    ) -> list[IngestResult]:
        """Store a batch in one transaction; the results are in the batch's order.

        `in_transaction` runs inside that transaction after the batch is written, so its
        writes commit (or roll back) together with the messages.
        """
        return await self.store(await self.prepare(batch), in_transaction=in_transaction)

    async def ingest_one(self, message: InboundMessage) -> IngestResult:
        """Store one message; quarantine it if its content cannot be stored, and raise Quarantined."""
        try:
            return (await self.ingest_many([message]))[0]
        except TRANSIENT:
            raise
        except Exception as err:
            reason = f"{type(err).__name__}: {err}".splitlines()[0][:1000]
            log.warning("quarantining %s from %s: %s", message.external_id, message.channel_account, reason)
            qid = await quarantine.record(
                self.db,
                self.blobs,
                channel_account=message.channel_account,
                external_id=message.external_id,
                reason=reason,
                payload=quarantine.message_payload(message),
                now=self.clock(),
            )
            raise Quarantined(qid, reason) from err

    async def prepare(self, batch: Sequence[InboundMessage]) -> list[Prepared]:
        """The work that needs no database, in a thread while the loop commits the previous batch."""
        return await asyncio.to_thread(prepare_batch, self.blobs.root, self.limits, list(batch))

    async def store(
        self, prepared: list[Prepared], *, in_transaction: TxHook | None = None
    ) -> list[IngestResult]:
        """Store prepared messages in one transaction, retried if another writer raced us."""
        for attempt in range(RETRIES_ON_CONFLICT):
            try:
                async with self.db.write(urgent=True) as conn:
                    results, events = await self._store(conn, prepared)
                    if in_transaction is not None:
                        await in_transaction(conn, results)
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
        existing = await _existing(conn, [p.message for p in batch])
        fresh: list[int] = []
        first_of_key: dict[tuple[str, str], int] = {}
        for index, p in enumerate(batch):
            key = (p.message.channel_account, p.message.external_id)
            if key in existing:
                mid, cid, contact_id = existing[key]
                results[index] = IngestResult(mid, cid, contact_id, duplicate=True, new_conversation=False)
            elif key not in first_of_key:
                first_of_key[key] = index
                fresh.append(index)

        wanted: dict[Identity, tuple[str | None, str | None]] = {}
        for index in fresh:
            m = batch[index].message
            wanted.setdefault(m.sender, (m.sender_name, m.language))
        contact_of = await contacts.resolve(conn, wanted, now)
        await _lock_contacts(conn, set(contact_of.values()))
        threads = await ThreadIndex.load(
            conn, [batch[i].message for i in fresh], contact_of, now - self.limits.thread_window
        )
        placed, created = _place(batch, fresh, contact_of, threads, now)
        await _insert_conversations(conn, created)
        await _insert_messages(conn, placed)
        await _insert_tags(conn, placed)
        reopened = await _touch_conversations(conn, [p for p in placed if isinstance(p.target, int)], now)
        audit = [event_row("conversation.reopened", now, cid) for cid in sorted(reopened)]
        await record(conn, audit)

        events = [
            event_row(
                "conversation.created", now, new.id, channel=new.row["channel"], contact=new.row["contact_id"]
            )
            for new in created
        ]
        events.extend(audit)
        new_ids = {new.id for new in created}
        first_in_new: set[int] = set()
        held: list[dict[str, Any]] = []
        starts_later: set[int] = set()
        for item in placed:
            cid = item.conversation_id
            starts = cid in new_ids and cid not in first_in_new
            first_in_new.add(cid)
            if item.prepared.message.content_pending:
                if starts:
                    starts_later.add(cid)
                held.append(
                    {
                        "message_id": item.message_id,
                        "channel_account": item.prepared.message.channel_account,
                        "event_at": now,
                        "new_conversation": starts,
                    }
                )
            results[item.index] = IngestResult(
                item.message_id,
                cid,
                item.contact_id,
                duplicate=False,
                new_conversation=starts,
                reopened=cid in reopened,
            )
            events.append(
                event_row(
                    "message.received",
                    now,
                    cid,
                    message_id=item.message_id,
                    channel=item.prepared.message.channel.value,
                )
            )
        await content.hold(conn, held)
        later = {row["message_id"] for row in held}
        await rule_queue.enqueue(
            conn,
            [e for e in events if e["kind"] != "message.received" or e["data"]["message_id"] not in later],
            now,
            new_conversations=frozenset(new_ids - starts_later),
        )
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
        return [r for r in results if r is not None], events


def _place(
    batch: list[Prepared],
    fresh: list[int],
    contact_of: dict[Identity, int],
    threads: ThreadIndex,
    now: datetime,
) -> tuple[list[_Placed], list[NewConversation]]:
    """Decide each fresh message's conversation, creating conversations as the batch needs them."""
    placed: list[_Placed] = []
    created: list[NewConversation] = []
    for index in fresh:
        m = batch[index].message
        contact_id = contact_of[m.sender]
        target = threads.find(m, contact_id)
        if target is None:
            target = NewConversation(
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
            created.append(target)
        elif isinstance(target, NewConversation):
            latest = max(target.row["last_message_at"], m.received_at)
            target.row["last_message_at"] = target.row["last_inbound_at"] = latest
        threads.remember(m, contact_id, target)
        placed.append(_Placed(batch[index], index, contact_id, target))
    return placed, created


async def _insert_conversations(conn: AsyncConnection, created: list[NewConversation]) -> None:
    if not created:
        return
    for new, cid in zip(created, await ids.reserve(conn, schema.conversations, len(created)), strict=True):
        new.id = cid
        new.row["id"] = cid
    await bulk.insert(conn, schema.conversations, [new.row for new in created])


async def _insert_messages(conn: AsyncConnection, placed: list[_Placed]) -> None:
    if not placed:
        return
    rows: list[dict[str, Any]] = []
    refs: list[dict[str, Any]] = []
    attachments: list[dict[str, Any]] = []
    terms: list[dict[str, Any]] = []
    raws: list[tuple[int, bytes]] = []
    for p, mid in zip(placed, await ids.reserve(conn, schema.messages, len(placed)), strict=True):
        p.message_id = mid
        m = p.prepared.message
        meta = dict(m.meta)
        if m.content_pending:
            meta[content.PENDING_FLAG] = True
        if p.prepared.notes:
            meta["ingest_notes"] = list(p.prepared.notes)
        if m.sender_name:
            meta.setdefault("sender_name", m.sender_name)
        cid = p.conversation_id
        rows.append(
            {
                "id": mid,
                "conversation_id": cid,
                "direction": Direction.INBOUND.value,
                "channel": m.channel.value,
                "channel_account": m.channel_account,
                "external_id": m.external_id,
                "sender": m.sender.address,
                "subject": m.subject,
                "text": m.text,
                "html": m.html,
                "raw_sha256": p.prepared.raw_sha256,
                "meta": meta,
                "created_at": m.received_at,
            }
        )
        refs.extend(
            {"ref": ref, "conversation_id": cid, "message_id": mid} for ref in dict.fromkeys(m.own_refs)
        )
        attachments.extend({**a, "message_id": mid} for a in p.prepared.attachments)
        terms.append({"id": mid, "terms": p.prepared.terms})
        if p.prepared.raw is not None:
            raws.append((mid, p.prepared.raw))
    await bulk.insert(conn, schema.messages, rows)
    await bulk.insert(conn, schema.message_raw, raws, columns=("message_id", "data"))
    await bulk.insert(conn, schema.message_refs, refs, on_conflict=[])
    await bulk.insert(conn, schema.attachments, attachments)
    await index_messages(conn, terms)


async def _insert_tags(conn: AsyncConnection, placed: list[_Placed]) -> None:
    """Tags a channel put on a message (`meta["tags"]`, e.g. `fax` for fax-to-mail) go on its conversation."""
    rows = {
        (p.conversation_id, tag)
        for p in placed
        for raw in p.prepared.message.meta.get("tags") or ()
        if (tag := str(raw).strip().lower()[:64])
    }
    if rows:
        await conn.execute(
            insert_ignore(conn, schema.conversation_tags),
            [{"conversation_id": cid, "tag": tag} for cid, tag in sorted(rows)],
        )


async def _existing(
    conn: AsyncConnection, batch: list[InboundMessage]
) -> dict[tuple[str, str], tuple[int, int, int]]:
    """The batch's messages already stored: (account, external id) -> (message, conversation, contact)."""
    keys = sorted({(x.channel_account, x.external_id) for x in batch})
    sids = bulk.listed(conn, [sid for _, sid in keys])
    accounts = bulk.listed(conn, [account for account, _ in keys])
    if bulk.is_pg(conn):
        stored = [mid for (mid,) in await bulk.fetch(conn, _stored_ids, sids=sids, accounts=accounts) if mid]
        if not stored:
            return {}
        found = await bulk.fetch(conn, _stored_query, ids=bulk.listed(conn, stored))
    else:
        found = await bulk.fetch(conn, _existing_query, sids=sids, accounts=accounts)
    wanted = set(keys)
    return {(a, e): (mid, cid, contact) for a, e, mid, cid, contact in found if (a, e) in wanted}


@bulk.statement
def _stored_ids(pg: bool) -> Select[Any]:
    """The stored message of each (account, external id) pair, or NULL (`accounts` and `sids` in step).

    One lookup on the unique (external id, account) index per pair, whatever the table's statistics
    say: matching the ids and the accounts as two lists was planned, on stale statistics, as a walk
    of every message of the account with each id compared against each (60 ms for 250 calls over
    1,000 messages, growing with both), and a join of the pairs as a scan of every message.
    """
    m = schema.messages
    pairs = bulk.zipped(sids=m.c.external_id, accounts=m.c.channel_account)
    stored = select(m.c.id).where(m.c.external_id == pairs.c.sids, m.c.channel_account == pairs.c.accounts)
    return select(stored.scalar_subquery()).select_from(pairs)


def _existing_columns() -> tuple[Any, ...]:
    m, c = schema.messages, schema.conversations
    return (m.c.channel_account, m.c.external_id, m.c.id, m.c.conversation_id, c.c.contact_id)


@bulk.statement
def _stored_query(pg: bool) -> Select[Any]:
    m, c = schema.messages, schema.conversations
    return select(*_existing_columns()).join(c, c.c.id == m.c.conversation_id).where(bulk.in_list(pg, m.c.id))


@bulk.statement
def _existing_query(pg: bool) -> Select[Any]:
    m, c = schema.messages, schema.conversations
    return (
        select(*_existing_columns())
        .join(c, c.c.id == m.c.conversation_id)
        .where(bulk.in_list(pg, m.c.external_id, "sids"), bulk.in_list(pg, m.c.channel_account, "accounts"))
    )


async def _lock_contacts(conn: AsyncConnection, contact_ids: set[int]) -> None:
    """On PostgreSQL, serialise batches that touch the same contacts, so two processes never
    open two conversations for one chat; SQLite has one writer at a time anyway."""
    if conn.dialect.name != "postgresql" or not contact_ids:
        return
    await conn.execute(
        text(
            "SELECT pg_advisory_xact_lock(:ns, (c % 2147483647)::int) "
            "FROM (SELECT unnest(CAST(:ids AS bigint[])) AS c ORDER BY 1) AS ordered"
        ),
        {"ns": CONTACT_LOCKS, "ids": sorted(contact_ids)},
    )


TOUCHED = ("id", "last_message_at", "last_inbound_at", "updated_at", "status", "snoozed_until")
"""The columns a message arriving on an existing conversation sets (it reopens the conversation)."""


async def _touch_conversations(conn: AsyncConnection, placed: list[_Placed], now: datetime) -> set[int]:
    """Move existing conversations' last-message times forward and reopen them; return the reopened."""
    latest: dict[int, datetime] = {}
    for p in placed:
        at = p.prepared.message.received_at
        latest[p.conversation_id] = max(latest.get(p.conversation_id, at), at)
    if not latest:
        return set()
    stamp = bulk.stamp_reader(conn)
    updates, reopened = [], set()
    for cid, status, stored_message, stored_inbound in await bulk.fetch(
        conn, _touch_query, ids=bulk.listed(conn, list(latest))
    ):
        at = latest[cid]
        last_message, last_inbound = stamp(stored_message), stamp(stored_inbound)
        updates.append(
            (
                cid,
                max(at, last_message) if last_message else at,
                max(at, last_inbound) if last_inbound else at,
                now,
                ConversationStatus.OPEN.value,
                None,
            )
        )
        if status != ConversationStatus.OPEN.value:
            reopened.add(cid)
    await bulk.update(conn, schema.conversations, ["id"], updates, columns=TOUCHED)
    return reopened


@bulk.statement
def _touch_query(pg: bool) -> Select[Any]:
    c = schema.conversations
    stored = select(c.c.id, c.c.status, c.c.last_message_at, c.c.last_inbound_at)
    return stored.where(bulk.in_list(pg, c.c.id))
