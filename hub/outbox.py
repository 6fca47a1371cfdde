"""The outbox: every outgoing message is stored before it is sent, then sent until done.

`Outbox.reply` writes the message and its outbox row in one transaction. `Dispatcher` claims
due rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the single-writer lock on SQLite), sends
them through their channel with the row's idempotency key, and records the result:
sent/delivered, a retry after exponential backoff with full jitter, or a permanent failure
that stays visible until someone retries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from channels.base import Channel
from hub import attachments, early_statuses, records
from hub.aio import backoff, cancel_and_wait
from hub.clock import Clock, utcnow
from hub.config import OutboxSection
from hub.errors import ChannelAuthError, Conflict, DeliveryRejected
from hub.events import EventBus, event_row, record
from hub.models import (
    ChannelKind,
    ConversationStatus,
    DeliveryResult,
    Direction,
    Identity,
    IdentityKind,
    Message,
    OutboundMessage,
    OutboundStatus,
)
from hub.rules import queue as rule_queue
from hub.store import Database, schema
from hub.store.claims import claim
from hub.store.rows import all_of, by_id
from hub.store.search import index_messages, index_terms
from hub.store.upsert import insert_ignore
from hub.uploads import Upload, attach

log = logging.getLogger(__name__)

Via = tuple[ChannelKind, str, Identity]
"""Another route for a reply: the message kind, the channel account and the recipient."""

STATUS_RANK = {
    OutboundStatus.QUEUED: 0,
    OutboundStatus.SENDING: 1,
    OutboundStatus.SENT: 2,
    OutboundStatus.DELIVERED: 3,
    OutboundStatus.FAILED: 3,
}
"""A provider's status report only ever moves a message forward along this order."""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One outgoing message's delivery record, as supervisors see it."""

    id: int
    message_id: int
    conversation_id: int
    channel_account: str
    recipient: str
    status: OutboundStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    provider_id: str | None
    refused: dict[str, str] | None
    created_at: datetime
    finished_at: datetime | None


class Outbox:
    """Persists outgoing messages and answers questions about their delivery."""

    def __init__(self, db: Database, bus: EventBus, clock: Clock = utcnow) -> None:
        self.db = db
        self.bus = bus
        self.clock = clock
        self.wake = asyncio.Event()

    async def reply(
        self,
        conversation_id: int,
        text_body: str,
        *,
        agent_id: int | None,
        subject: str | None = None,
        html: str | None = None,
        idempotency_key: str | None = None,
        automatic: bool = False,
        meta: Mapping[str, Any] | None = None,
        audit: Mapping[str, Mapping[str, Any]] | None = None,
        via: Via | None = None,
        files: Sequence[Upload] = (),
    ) -> Message:
        """Queue a reply to the conversation's contact on the conversation's channel (or `via` another).

        `audit` adds events (kind to data) recorded with the message, in the same transaction;
        `files` are attached to it.

        With an `idempotency_key` already used, returns the message stored the first time
        instead of queueing another (a double-clicked Send sends once).
        """
        key = idempotency_key or uuid.uuid4().hex
        try:
            return await self._reply(
                conversation_id,
                text_body,
                key,
                agent_id,
                subject,
                html,
                automatic,
                meta,
                audit or {},
                via,
                files,
            )
        except IntegrityError:
            async with self.db.read() as conn:
                existing = await _message_for_key(conn, key)
            if existing is None:
                raise
            if existing.conversation_id != conversation_id:
                raise Conflict("idempotency key already used for another conversation") from None
            return existing

    async def _reply(
        self,
        conversation_id: int,
        text_body: str,
        key: str,
        agent_id: int | None,
        subject: str | None,
        html: str | None,
        automatic: bool,
        meta: Mapping[str, Any] | None,
        audit: Mapping[str, Mapping[str, Any]],
        via: Via | None,
        files: Sequence[Upload],
    ) -> Message:
        now = self.clock()
        async with self.db.write() as conn:
            existing = await _message_for_key(conn, key)
            if existing is not None:
                if existing.conversation_id != conversation_id:
                    raise Conflict("idempotency key already used for another conversation")
                return existing
            events = await queue_reply(
                conn,
                conversation_id,
                text_body,
                key=key,
                agent_id=agent_id,
                subject=subject,
                html=html,
                automatic=automatic,
                meta=meta,
                audit=audit,
                now=now,
                via=via,
                files=files,
            )
            stored = await _message_for_key(conn, key)
        assert stored is not None
        self.bus.publish(events)
        self.wake.set()
        return stored

    async def entries(
        self, status: OutboundStatus | None = None, limit: int = 100, offset: int = 0
    ) -> list[OutboxEntry]:
        """Outbox rows, newest first, optionally of one status."""
        o = schema.outbox
        stmt = select(o).order_by(o.c.id.desc()).limit(limit).offset(offset)
        if status is not None:
            stmt = stmt.where(o.c.status == status.value)
        async with self.db.read() as conn:
            rows = await all_of(conn, stmt)
        return [_entry(r) for r in rows]

    async def entry(self, outbox_id: int) -> OutboxEntry:
        """One outbox row; raise NotFound."""
        async with self.db.read() as conn:
            row = await by_id(conn, schema.outbox, outbox_id, "outbox entry")
        return _entry(row)

    async def counts(self) -> dict[str, int]:
        """How many outbox rows are in each status."""
        o = schema.outbox
        async with self.db.read() as conn:
            rows = await conn.execute(select(o.c.status, func.count()).group_by(o.c.status))
            found = {r[0]: r[1] for r in rows}
        return {s.value: found.get(s.value, 0) for s in OutboundStatus}

    async def retry(self, outbox_id: int, agent_id: int | None = None) -> OutboxEntry:
        """Send a permanently failed message again (after someone fixed the cause)."""
        now = self.clock()
        o = schema.outbox
        async with self.db.write() as conn:
            row = await by_id(conn, o, outbox_id, "outbox entry")
            if row["status"] != OutboundStatus.FAILED.value:
                raise Conflict(f"only failed messages can be retried; this one is {row['status']}")
            await conn.execute(
                update(o)
                .where(o.c.id == outbox_id)
                .values(
                    status=OutboundStatus.QUEUED.value,
                    attempts=0,
                    next_attempt_at=now,
                    finished_at=None,
                    claimed_by=None,
                    claimed_until=None,
                )
            )
            events = [
                event_row(
                    "message.retry", now, row["conversation_id"], agent_id, message_id=row["message_id"]
                )
            ]
            await record(conn, events)
        self.bus.publish(events)
        self.wake.set()
        return await self.entry(outbox_id)

    async def record_status(
        self, channel_account: str, provider_id: str, result: DeliveryResult, *, hold: bool = False
    ) -> bool:
        """Apply a later status report from a provider (delivered, failed); False if unknown.

        With `hold`, a report for an id no send has recorded yet is kept while a send on the
        account is under way, and applied when that send records the id (True); providers that
        report before their own API call has answered lose nothing.
        """
        now = self.clock()
        o = schema.outbox
        async with self.db.write() as conn:
            row = (
                (
                    await conn.execute(
                        select(o).where(
                            o.c.channel_account == channel_account, o.c.provider_id == provider_id
                        )
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                return hold and await early_statuses.hold(conn, channel_account, provider_id, result, now)
            events = await _advance(conn, row, result, now)
            if events:
                await record(conn, events)
        self.bus.publish(events)
        return True


class Dispatcher:
    """Works off the outbox: claims due rows, sends them, records what happened."""

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        channels: Mapping[str, Channel],
        settings: OutboxSection,
        clock: Clock = utcnow,
        worker_id: str | None = None,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.channels = channels
        self.settings = settings
        self.clock = clock
        self.worker_id = worker_id or uuid.uuid4().hex[:16]
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        """Start the dispatch loop."""
        if self._task is None or self._task.done():
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name="outbox-dispatcher")

    async def stop(self, grace: float = 5.0) -> None:
        """Let the sends in flight finish for up to `grace` s; release what is left for a retry."""
        if self._task is None:
            return
        self._stopping.set()
        self.outbox.wake.set()
        done, _ = await asyncio.wait({self._task}, timeout=grace)
        if not done:
            await cancel_and_wait(self._task)
        self._task = None
        await self.release_claims()

    async def release_claims(self) -> int:
        """Put this worker's unfinished claims back in the queue; return how many."""
        o = schema.outbox
        async with self.db.write() as conn:
            done = await conn.execute(
                update(o)
                .where(o.c.claimed_by == self.worker_id, o.c.status == OutboundStatus.SENDING.value)
                .values(
                    status=OutboundStatus.QUEUED.value,
                    claimed_by=None,
                    claimed_until=None,
                    next_attempt_at=self.clock(),
                )
            )
        if done.rowcount:
            log.info("released %d unfinished sends for a retry", done.rowcount)
        return int(done.rowcount)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self.outbox.wake.clear()
            try:
                busy = await self.dispatch_once()
            except Exception:
                log.exception("outbox dispatch failed; trying again shortly")
                busy = 0
            if busy:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.outbox.wake.wait(), self.settings.poll_seconds)

    async def dispatch_once(self) -> int:
        """Claim and send one round of due messages; return how many were handled."""
        claimed = await self._claim()
        if claimed:
            await asyncio.gather(*(self._deliver(row) for row in claimed))
        return len(claimed)

    async def _claim(self) -> list[dict[str, Any]]:
        now = self.clock()
        lease_until = now + timedelta(seconds=self.settings.lease_seconds)
        o, m = schema.outbox, schema.messages
        due = or_(
            and_(o.c.status == OutboundStatus.QUEUED.value, o.c.next_attempt_at <= now),
            and_(o.c.status == OutboundStatus.SENDING.value, o.c.claimed_until < now),
        )
        values = {
            "status": OutboundStatus.SENDING.value,
            "claimed_by": self.worker_id,
            "claimed_until": lease_until,
            "attempts": o.c.attempts + 1,
        }
        async with self.db.write() as conn:
            claimed = await claim(
                conn, o, due, [o.c.next_attempt_at, o.c.id], self.settings.concurrency, values
            )
            ids = [r["id"] for r in claimed]
            if not ids:
                return []
            rows = await all_of(
                conn,
                select(o, m.c.text, m.c.subject, m.c.html, m.c.automatic, m.c.meta)
                .join(m, m.c.id == o.c.message_id)
                .where(o.c.id.in_(ids)),
            )
            by_message = await attachments.of_messages(conn, [r["message_id"] for r in rows])
        return [{**r, "attachments": tuple(by_message.get(r["message_id"], ()))} for r in rows]

    async def _deliver(self, row: dict[str, Any]) -> None:
        channel = self.channels.get(row["channel_account"])
        message = _outbound(row)
        result: DeliveryResult | None = None
        error: str | None = None
        permanent = False
        if channel is None:
            error, permanent = f"no channel named {row['channel_account']!r} is configured", True
        else:
            try:
                async with asyncio.timeout(self.settings.lease_seconds / 2):
                    result = await channel.send(message)
            except DeliveryRejected as err:
                error, permanent = str(err) or type(err).__name__, True
            except ChannelAuthError as err:
                error = f"credentials refused: {err}"
            except TimeoutError:
                error = f"send timed out after {self.settings.lease_seconds / 2:.0f} s"
            except Exception as err:  # noqa: BLE001
                error = f"{type(err).__name__}: {err}"
                log.warning(
                    "sending message %s via %s failed: %s", row["message_id"], row["channel_account"], error
                )
        if result is not None and result.status is OutboundStatus.FAILED:
            error, permanent = result.error or "the provider refused the message", True
        elif result is not None and result.status not in (OutboundStatus.SENT, OutboundStatus.DELIVERED):
            error, result = f"the channel answered {result.status.value}, not sent or delivered", None
        await self._record(row, result, error, permanent)

    async def _record(
        self, row: dict[str, Any], result: DeliveryResult | None, error: str | None, permanent: bool
    ) -> None:
        now = self.clock()
        o = schema.outbox
        values: dict[str, Any] = {"claimed_by": None, "claimed_until": None, "last_error": error}
        if result is not None and error is None:
            kind = result.status.value
            values.update(
                status=result.status.value,
                provider_id=result.provider_id,
                refused=result.refused or None,
                finished_at=now,
            )
        elif permanent or row["attempts"] >= self.settings.max_attempts:
            kind = "failed"
            if not permanent:
                error = f"gave up after {row['attempts']} attempts: {error}"
            values.update(status=OutboundStatus.FAILED.value, last_error=error, finished_at=now)
        else:
            kind = "retrying"
            delay = backoff(
                row["attempts"], self.settings.base_delay_seconds, self.settings.max_delay_seconds
            )
            values.update(status=OutboundStatus.QUEUED.value, next_attempt_at=now + timedelta(seconds=delay))
        async with self.db.write() as conn:
            done = await conn.execute(
                update(o)
                .where(
                    o.c.id == row["id"],
                    o.c.claimed_by == self.worker_id,
                    o.c.status == OutboundStatus.SENDING.value,
                )
                .values(**values)
            )
            if done.rowcount == 0:
                log.info("outbox row %s changed while it was being sent; keeping the newer state", row["id"])
                return
            events = [
                event_row(
                    f"message.{kind}",
                    now,
                    row["conversation_id"],
                    None,
                    message_id=row["message_id"],
                    attempt=row["attempts"],
                    error=error,
                )
            ]
            if result is not None and error is None and result.provider_id:
                ref = {"ref": result.provider_id, "conversation_id": row["conversation_id"]}
                await conn.execute(
                    insert_ignore(conn, schema.message_refs), [ref | {"message_id": row["message_id"]}]
                )
                events += await _apply_held(conn, row, result, now)
            await record(conn, events)
        self.outbox.bus.publish(events)


async def _advance(
    conn: AsyncConnection, row: RowMapping | Mapping[str, Any], result: DeliveryResult, now: datetime
) -> list[dict[str, Any]]:
    """Move an outbox row on to a provider's later status (never back); the event to record, if it moved."""
    o = schema.outbox
    earlier = [s.value for s in OutboundStatus if STATUS_RANK[s] < STATUS_RANK[result.status]]
    done = await conn.execute(
        update(o)
        .where(o.c.id == row["id"], o.c.status.in_(earlier))
        .values(status=result.status.value, last_error=result.error, finished_at=now)
    )
    if done.rowcount == 0:
        return []
    return [
        event_row(
            f"message.{result.status.value}",
            now,
            row["conversation_id"],
            message_id=row["message_id"],
            error=result.error,
        )
    ]


async def _apply_held(
    conn: AsyncConnection, row: Mapping[str, Any], sent: DeliveryResult, now: datetime
) -> list[dict[str, Any]]:
    """Apply, in order, the status reports that arrived before this send recorded its id."""
    assert sent.provider_id is not None
    events: list[dict[str, Any]] = []
    for result in await early_statuses.take(conn, row["channel_account"], sent.provider_id):
        events += await _advance(conn, row, result, now)
    return events


def _outbound(row: Mapping[str, Any]) -> OutboundMessage:
    meta = dict(row["meta"] or {})
    return OutboundMessage(
        id=row["id"],
        message_id=row["message_id"],
        conversation_id=row["conversation_id"],
        channel=ChannelKind(row["channel"]),
        channel_account=row["channel_account"],
        recipient=Identity(IdentityKind(row["recipient_kind"]), row["recipient"]),
        text=row["text"],
        idempotency_key=row["idempotency_key"],
        attempt=row["attempts"],
        subject=row["subject"],
        html=row["html"],
        attachments=row["attachments"],
        reply_refs=tuple(meta.pop("reply_refs", ())),
        automatic=bool(row["automatic"]),
        meta=meta,
        queued_at=row["created_at"],
    )


def _entry(row: RowMapping | Mapping[str, Any]) -> OutboxEntry:
    return records.from_row(OutboxEntry, row, status=OutboundStatus(row["status"]))


async def _message_for_key(conn: AsyncConnection, key: str) -> Message | None:
    m, o = schema.messages, schema.outbox
    row = (
        (
            await conn.execute(
                select(m, o.c.status.label("delivery"))
                .join(o, o.c.message_id == m.c.id)
                .where(o.c.idempotency_key == key)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    files = (await attachments.of_messages(conn, [row["id"]])).get(row["id"], ())
    return records.message(row, files, row["delivery"])


async def recipient_of(
    conn: AsyncConnection, conversation_id: int, contact_id: int, channel: ChannelKind
) -> Identity:
    """Reply to whoever wrote last on this conversation, else the contact's identity for the channel."""
    return pick_recipient(
        await contact_identities(conn, contact_id), await last_sender(conn, conversation_id), channel
    )


async def contact_identities(conn: AsyncConnection, contact_id: int) -> list[Identity]:
    """The contact's addresses, oldest first."""
    idt = schema.identities
    rows = await conn.execute(
        select(idt.c.kind, idt.c.address).where(idt.c.contact_id == contact_id).order_by(idt.c.id)
    )
    return [Identity(IdentityKind(r.kind), r.address) for r in rows]


async def last_sender(conn: AsyncConnection, conversation_id: int) -> str | None:
    """The address that wrote the conversation's latest inbound message (None if none has one)."""
    m = schema.messages
    sender: str | None = (
        await conn.execute(
            select(m.c.sender)
            .where(
                m.c.conversation_id == conversation_id,
                m.c.direction == Direction.INBOUND.value,
                m.c.sender.is_not(None),
            )
            .order_by(m.c.created_at.desc(), m.c.id.desc())
            .limit(1)
        )
    ).scalar()
    return sender


def pick_recipient(identities: Sequence[Identity], sender: str | None, channel: ChannelKind) -> Identity:
    """The last sender's identity for the channel, else the contact's first; Conflict if none fits."""
    kind = channel.identity_kind
    for identity in identities:
        if identity.address == sender and (kind is None or identity.kind is kind):
            return identity
    for identity in identities:
        if kind is None or identity.kind is kind:
            return identity
    raise Conflict(f"the contact has no {kind.value if kind else 'known'} address to reply to")


async def _reply_refs(conn: AsyncConnection, conversation_id: int) -> list[str]:
    """The references of the latest inbound message, which a threaded reply cites."""
    r = schema.message_refs
    latest = await records.latest_inbound(conn, conversation_id, schema.messages.c.id)
    if latest is None:
        return []
    return list((await conn.execute(select(r.c.ref).where(r.c.message_id == latest))).scalars())


async def queue_reply(
    conn: AsyncConnection,
    conversation_id: int,
    text_body: str,
    *,
    key: str,
    agent_id: int | None,
    subject: str | None,
    html: str | None,
    automatic: bool,
    meta: Mapping[str, Any] | None,
    audit: Mapping[str, Mapping[str, Any]],
    now: datetime,
    via: Via | None = None,
    files: Sequence[Upload] = (),
) -> list[dict[str, Any]]:
    """Store a reply and its outbox entry in the caller's transaction; return the events to publish.

    `via` sends it on another channel account to another of the contact's addresses than the
    conversation's own; `files` go with it as attachments.
    """
    conv = await by_id(conn, schema.conversations, conversation_id, "conversation")
    channel = ChannelKind(conv["channel"])
    if via is not None:
        channel, account, recipient = via
    else:
        account = conv["channel_account"]
        recipient = await recipient_of(conn, conversation_id, conv["contact_id"], channel)
    refs = await _reply_refs(conn, conversation_id)
    message_meta = dict(meta or {})
    if refs:
        message_meta["reply_refs"] = refs
    mid = (
        await conn.execute(
            insert(schema.messages).returning(schema.messages.c.id),
            {
                "conversation_id": conversation_id,
                "direction": Direction.OUTBOUND.value,
                "channel": channel.value,
                "channel_account": account,
                "sender": None,
                "author_id": agent_id,
                "subject": subject or conv["subject"],
                "text": text_body,
                "html": html,
                "automatic": automatic,
                "meta": message_meta,
                "created_at": now,
            },
        )
    ).scalar_one()
    await conn.execute(
        insert(schema.outbox),
        {
            "message_id": mid,
            "conversation_id": conversation_id,
            "channel": channel.value,
            "channel_account": account,
            "recipient_kind": recipient.kind.value,
            "recipient": recipient.address,
            "idempotency_key": key,
            "status": OutboundStatus.QUEUED.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        },
    )
    await attach(conn, mid, files)
    await index_messages(conn, [{"id": mid, "terms": index_terms(subject, text_body)}])
    values: dict[str, Any] = {"updated_at": now, "last_message_at": now}
    if not automatic and conv["status"] == ConversationStatus.OPEN.value:
        values["status"] = ConversationStatus.PENDING.value
    await conn.execute(
        update(schema.conversations).where(schema.conversations.c.id == conversation_id).values(**values)
    )
    events = [
        event_row("message.queued", now, conversation_id, agent_id, message_id=mid, automatic=automatic),
        *(
            event_row(kind, now, conversation_id, agent_id, message_id=mid, **data)
            for kind, data in audit.items()
        ),
    ]
    await record(conn, events)
    await rule_queue.enqueue(conn, events, now)
    return events
