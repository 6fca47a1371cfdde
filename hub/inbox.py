"""The unified inbox: ingest, conversations, assignment, statuses, notes, tags, search."""

from __future__ import annotations

import builtins
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, delete, func, insert, or_, select, text, union_all, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import attachments, records, scheduler
from hub.clock import Clock, utcnow
from hub.errors import Conflict, NotFound
from hub.events import EventBus, event_row, record
from hub.group_commit import GroupCommitter
from hub.ingest import IngestPipeline, TxHook
from hub.models import (
    Availability,
    Call,
    ChannelKind,
    Conversation,
    ConversationStatus,
    Direction,
    Event,
    InboundMessage,
    IngestResult,
    Message,
    Priority,
)
from hub.prepare import IngestLimits
from hub.rules import queue as rule_queue
from hub.store import BlobStore, Database, schema
from hub.store.rows import all_of, by_id
from hub.store.search import index_messages, index_terms, match_sql
from hub.store.upsert import insert_ignore

MAX_TAG_LENGTH = 64
WAKE = "conversation.wake"


class SortOrder(enum.StrEnum):
    """How a conversation list is ordered."""

    UPDATED = "updated"
    CREATED = "created"
    DUE = "due"
    PRIORITY = "priority"


@dataclass(frozen=True, slots=True)
class ConversationFilter:
    """What the inbox list shows; empty fields do not filter."""

    statuses: tuple[ConversationStatus, ...] = ()
    assignee_id: int | None = None
    unassigned: bool = False
    team_id: int | None = None
    channels: tuple[ChannelKind, ...] = ()
    tag: str | None = None
    contact_id: int | None = None
    breached: bool = False
    query: str | None = None
    sort: SortOrder = SortOrder.UPDATED
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Timeline:
    """A conversation with everything that happened in it."""

    conversation: Conversation
    messages: tuple[Message, ...]
    calls: tuple[Call, ...]
    events: tuple[Event, ...]


@dataclass(slots=True)
class Inbox:
    """The inbox service every channel and the web API work through."""

    db: Database
    blobs: BlobStore
    bus: EventBus = field(default_factory=EventBus)
    limits: IngestLimits = field(default_factory=IngestLimits)
    clock: Clock = utcnow
    pipeline: IngestPipeline = field(init=False)
    committer: GroupCommitter = field(init=False)

    def __post_init__(self) -> None:
        self.pipeline = IngestPipeline(self.db, self.blobs, self.bus, self.limits, self.clock)
        self.committer = GroupCommitter(self.pipeline)

    def start(self) -> None:
        """Begin group-committing concurrent ingests."""
        self.committer.start()

    async def stop(self) -> None:
        """Commit what was submitted and stop the background task."""
        await self.committer.stop()

    async def ingest(self, message: InboundMessage) -> IngestResult:
        """Store one inbound message exactly once; return where it went."""
        return await self.committer.submit(message)

    async def ingest_many(
        self, messages: Sequence[InboundMessage], *, in_transaction: TxHook | None = None
    ) -> list[IngestResult]:
        """Store a batch in one transaction, with `in_transaction`'s writes committed alongside."""
        return await self.pipeline.ingest_many(messages, in_transaction=in_transaction)

    # Reading

    async def conversation(self, conversation_id: int) -> Conversation:
        """One conversation; raise NotFound."""
        async with self.db.read() as conn:
            return await _conversation(conn, conversation_id)

    async def list(self, flt: ConversationFilter) -> tuple[builtins.list[Conversation], int]:
        """A page of conversations and the total that match the filter."""
        c = schema.conversations
        now = self.clock()
        count_stmt = _apply_filter(select(func.count()).select_from(c), flt, self.db.dialect, now)
        if flt.sort is SortOrder.DUE:
            stmt = _due_page(flt, self.db.dialect, now)
        else:
            stmt = _apply_filter(select(c), flt, self.db.dialect, now)
            stmt = stmt.order_by(*_ordering(flt.sort)).limit(flt.limit).offset(flt.offset)
        async with self.db.read() as conn:
            rows = await all_of(conn, stmt)
            total = (await conn.execute(count_stmt)).scalar_one()
            tags = await _tags(conn, [r["id"] for r in rows])
        return [records.conversation(r, tags.get(r["id"], ())) for r in rows], total

    async def timeline(self, conversation_id: int) -> Timeline:
        """A conversation with its messages (and their delivery status), calls and events."""
        m, o = schema.messages, schema.outbox
        async with self.db.read() as conn:
            conv = await _conversation(conn, conversation_id)
            rows = await all_of(
                conn,
                select(m, o.c.status.label("delivery"))
                .outerjoin(o, o.c.message_id == m.c.id)
                .where(m.c.conversation_id == conversation_id)
                .order_by(m.c.created_at, m.c.id),
            )
            by_message = await attachments.of_messages(conn, [r["id"] for r in rows])
            calls = await all_of(
                conn,
                select(schema.calls)
                .where(schema.calls.c.conversation_id == conversation_id)
                .order_by(schema.calls.c.started_at),
            )
            events = await all_of(
                conn,
                select(schema.events)
                .where(schema.events.c.conversation_id == conversation_id)
                .order_by(schema.events.c.id),
            )
        return Timeline(
            conversation=conv,
            messages=tuple(records.message(r, by_message.get(r["id"], ()), r["delivery"]) for r in rows),
            calls=tuple(records.call(r) for r in calls),
            events=tuple(records.event(r) for r in events),
        )

    async def search(self, query: str, limit: int = 50) -> builtins.list[Conversation]:
        """Conversations with a message matching the words of `query`, most recent first."""
        conversations, _ = await self.list(ConversationFilter(query=query, limit=limit))
        return conversations

    # Acting

    async def add_note(self, conversation_id: int, agent_id: int, body: str) -> Message:
        """Add an internal note, which the customer never sees."""
        now = self.clock()
        async with self.db.write() as conn:
            mid, events = await insert_note(conn, conversation_id, agent_id, body, now)
            stored = (
                (await conn.execute(select(schema.messages).where(schema.messages.c.id == mid)))
                .mappings()
                .one()
            )
        self.bus.publish(events)
        return records.message(stored)

    async def assign(self, conversation_id: int, agent_id: int | None, by: int | None = None) -> Conversation:
        """Assign a conversation to an agent, or unassign it with None."""
        now = self.clock()
        async with self.db.write() as conn:
            await _conversation(conn, conversation_id)
            if agent_id is not None:
                await check_assignable(conn, agent_id)
            events = await set_assignee(conn, conversation_id, agent_id, by, now)
            await rule_queue.enqueue(conn, events, now)
        self.bus.publish(events)
        return await self.conversation(conversation_id)

    async def assign_round_robin(
        self, conversation_id: int, team_id: int, by: int | None = None
    ) -> Conversation:
        """Give the conversation to the team's available agent who was assigned longest ago."""
        now = self.clock()
        async with self.db.write() as conn:
            await _conversation(conn, conversation_id)
            events = await round_robin(conn, conversation_id, team_id, by, now)
            await rule_queue.enqueue(conn, events, now)
        self.bus.publish(events)
        return await self.conversation(conversation_id)

    async def set_status(
        self,
        conversation_id: int,
        status: ConversationStatus,
        by: int | None = None,
        snoozed_until: datetime | None = None,
    ) -> Conversation:
        """Change the status; snoozing needs a time in the future."""
        now = self.clock()
        async with self.db.write() as conn:
            events = await change_status(conn, conversation_id, status, by, now, snoozed_until)
            await rule_queue.enqueue(conn, events, now)
        self.bus.publish(events)
        return await self.conversation(conversation_id)

    async def set_tags(
        self,
        conversation_id: int,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        by: int | None = None,
    ) -> Conversation:
        """Add and remove tags (lower-cased, trimmed)."""
        now = self.clock()
        async with self.db.write() as conn:
            await _conversation(conn, conversation_id)
            events = await change_tags(conn, conversation_id, add, remove, by, now)
        self.bus.publish(events)
        return await self.conversation(conversation_id)

    async def set_priority(
        self, conversation_id: int, priority: Priority, by: int | None = None
    ) -> Conversation:
        """Change a conversation's priority."""
        now = self.clock()
        async with self.db.write() as conn:
            events = await change_priority(conn, conversation_id, priority, by, now)
        self.bus.publish(events)
        return await self.conversation(conversation_id)


# Changes in the caller's transaction; each returns the audit events it recorded.


async def insert_note(
    conn: AsyncConnection, conversation_id: int, agent_id: int | None, body: str, now: datetime
) -> tuple[int, builtins.list[dict[str, Any]]]:
    """Add an internal note; return its message id and the events."""
    conv = await _conversation(conn, conversation_id)
    row = {
        "conversation_id": conversation_id,
        "direction": Direction.NOTE.value,
        "channel": conv.channel.value,
        "channel_account": conv.channel_account,
        "author_id": agent_id,
        "text": body,
        "meta": {},
        "created_at": now,
    }
    mid = (await conn.execute(insert(schema.messages).returning(schema.messages.c.id), row)).scalar_one()
    await index_messages(conn, [{"id": mid, "terms": index_terms(body)}])
    await _touch(conn, conversation_id, now)
    events = [event_row("note.added", now, conversation_id, agent_id, message_id=mid)]
    await record(conn, events)
    return mid, events


async def check_assignable(conn: AsyncConnection, agent_id: int) -> None:
    """Raise NotFound or Conflict unless the agent exists and is active."""
    active = (
        await conn.execute(select(schema.agents.c.active).where(schema.agents.c.id == agent_id))
    ).scalar()
    if active is None:
        raise NotFound(f"agent {agent_id} does not exist")
    if not active:
        raise Conflict(f"agent {agent_id} is deactivated")


async def round_robin(
    conn: AsyncConnection, conversation_id: int, team_id: int, by: int | None, now: datetime
) -> builtins.list[dict[str, Any]]:
    """Move the conversation to the team and give it to the available member assigned longest ago."""
    tm, ag = schema.team_members, schema.agents
    seq = (
        await conn.execute(
            select(schema.teams.c.assign_seq).where(schema.teams.c.id == team_id).with_for_update()
        )
    ).scalar()
    if seq is None:
        raise NotFound(f"team {team_id} does not exist")
    never_first = tm.c.last_assigned_seq.is_(None).desc()
    agent_id = (
        await conn.execute(
            select(tm.c.agent_id)
            .join(ag, ag.c.id == tm.c.agent_id)
            .where(
                tm.c.team_id == team_id,
                ag.c.active.is_(True),
                ag.c.availability == Availability.AVAILABLE.value,
            )
            .order_by(never_first, tm.c.last_assigned_seq, tm.c.agent_id)
            .limit(1)
        )
    ).scalar()
    await conn.execute(
        update(schema.conversations)
        .where(schema.conversations.c.id == conversation_id)
        .values(team_id=team_id)
    )
    if agent_id is None:
        events = [event_row("assignment.no_agent_available", now, conversation_id, by, team_id=team_id)]
        await record(conn, events)
        return events
    await conn.execute(update(schema.teams).where(schema.teams.c.id == team_id).values(assign_seq=seq + 1))
    await conn.execute(
        update(tm).where(tm.c.team_id == team_id, tm.c.agent_id == agent_id).values(last_assigned_seq=seq + 1)
    )
    return await set_assignee(conn, conversation_id, agent_id, by, now, team_id=team_id)


async def set_assignee(
    conn: AsyncConnection,
    conversation_id: int,
    agent_id: int | None,
    by: int | None,
    now: datetime,
    **extra: Any,
) -> builtins.list[dict[str, Any]]:
    """Set (or clear) the assignee."""
    await conn.execute(
        update(schema.conversations)
        .where(schema.conversations.c.id == conversation_id)
        .values(assignee_id=agent_id, updated_at=now)
    )
    events = [event_row("conversation.assigned", now, conversation_id, by, assignee_id=agent_id, **extra)]
    await record(conn, events)
    return events


async def change_status(
    conn: AsyncConnection,
    conversation_id: int,
    status: ConversationStatus,
    by: int | None,
    now: datetime,
    snoozed_until: datetime | None = None,
    **extra: Any,
) -> builtins.list[dict[str, Any]]:
    """Change the status; snoozing needs a time in the future."""
    if status is ConversationStatus.SNOOZED:
        if snoozed_until is None or snoozed_until <= now:
            raise Conflict("snoozing needs a snoozed_until time in the future")
    else:
        snoozed_until = None
    before = await _conversation(conn, conversation_id)
    await conn.execute(
        update(schema.conversations)
        .where(schema.conversations.c.id == conversation_id)
        .values(status=status.value, snoozed_until=snoozed_until, updated_at=now)
    )
    events = [
        event_row(
            "conversation.status_changed",
            now,
            conversation_id,
            by,
            old=before.status.value,
            new=status.value,
            snoozed_until=snoozed_until.isoformat() if snoozed_until else None,
            **extra,
        )
    ]
    await record(conn, events)
    if snoozed_until is not None:
        await scheduler.schedule(
            conn,
            WAKE,
            snoozed_until,
            f"{WAKE}:{conversation_id}:{snoozed_until.isoformat()}",
            conversation_id=conversation_id,
            now=now,
        )
    return events


async def change_tags(
    conn: AsyncConnection,
    conversation_id: int,
    add: Sequence[str],
    remove: Sequence[str],
    by: int | None,
    now: datetime,
    **extra: Any,
) -> builtins.list[dict[str, Any]]:
    """Add and remove tags (lower-cased, trimmed); no event when nothing changes."""
    add_set = {_tag(t) for t in add} - {""}
    remove_set = {_tag(t) for t in remove} - {""}
    ct = schema.conversation_tags
    have = set(
        (await conn.execute(select(ct.c.tag).where(ct.c.conversation_id == conversation_id))).scalars()
    )
    to_add = sorted(add_set - have - remove_set)
    to_remove = sorted(remove_set & have)
    if to_add:
        await conn.execute(
            insert_ignore(conn, ct), [{"conversation_id": conversation_id, "tag": t} for t in to_add]
        )
    if to_remove:
        await conn.execute(delete(ct).where(ct.c.conversation_id == conversation_id, ct.c.tag.in_(to_remove)))
    if not (to_add or to_remove):
        return []
    events = [
        event_row("conversation.tagged", now, conversation_id, by, added=to_add, removed=to_remove, **extra)
    ]
    await _touch(conn, conversation_id, now)
    await record(conn, events)
    return events


async def change_priority(
    conn: AsyncConnection,
    conversation_id: int,
    priority: Priority,
    by: int | None,
    now: datetime,
    **extra: Any,
) -> builtins.list[dict[str, Any]]:
    """Change a conversation's priority."""
    before = await _conversation(conn, conversation_id)
    await conn.execute(
        update(schema.conversations)
        .where(schema.conversations.c.id == conversation_id)
        .values(priority=int(priority), updated_at=now)
    )
    events = [
        event_row(
            "conversation.priority_changed",
            now,
            conversation_id,
            by,
            old=before.priority.name.lower(),
            new=priority.name.lower(),
            **extra,
        )
    ]
    await record(conn, events)
    return events


async def wake(conn: AsyncConnection, timer: scheduler.Timer) -> list[dict[str, Any]]:
    """Scheduler handler: reopen a conversation whose snooze ended (unless it changed since)."""
    c = schema.conversations
    done = await conn.execute(
        update(c)
        .where(
            c.c.id == timer.conversation_id,
            c.c.status == ConversationStatus.SNOOZED.value,
            c.c.snoozed_until <= timer.due_at,
        )
        .values(status=ConversationStatus.OPEN.value, snoozed_until=None, updated_at=timer.due_at)
    )
    if done.rowcount == 0:
        return []
    events = [
        event_row(
            "conversation.status_changed",
            timer.due_at,
            timer.conversation_id,
            None,
            old=ConversationStatus.SNOOZED.value,
            new=ConversationStatus.OPEN.value,
            reason="snooze ended",
        )
    ]
    await record(conn, events)
    await rule_queue.enqueue(conn, events, timer.due_at)
    return events


def _tag(value: str) -> str:
    tag = " ".join(value.strip().lower().split())
    if len(tag) > MAX_TAG_LENGTH:
        raise Conflict(f"tag {tag[:20]!r}… is over {MAX_TAG_LENGTH} characters")
    return tag


async def _conversation(conn: AsyncConnection, conversation_id: int) -> Conversation:
    row = await by_id(conn, schema.conversations, conversation_id, "conversation")
    tags = await _tags(conn, [conversation_id])
    return records.conversation(row, tags.get(conversation_id, ()))


async def _tags(conn: AsyncConnection, ids: list[int]) -> dict[int, list[str]]:
    if not ids:
        return {}
    ct = schema.conversation_tags
    rows = await conn.execute(select(ct.c.conversation_id, ct.c.tag).where(ct.c.conversation_id.in_(ids)))
    out: dict[int, list[str]] = {}
    for r in rows:
        out.setdefault(r.conversation_id, []).append(r.tag)
    return out


async def _touch(conn: AsyncConnection, conversation_id: int, now: datetime) -> None:
    await conn.execute(
        update(schema.conversations)
        .where(schema.conversations.c.id == conversation_id)
        .values(updated_at=now)
    )


def _apply_filter(stmt: Select[Any], flt: ConversationFilter, dialect: str, now: datetime) -> Select[Any]:
    c = schema.conversations
    if flt.statuses:
        stmt = stmt.where(c.c.status.in_([s.value for s in flt.statuses]))
    if flt.assignee_id is not None:
        stmt = stmt.where(c.c.assignee_id == flt.assignee_id)
    if flt.unassigned:
        stmt = stmt.where(c.c.assignee_id.is_(None))
    if flt.team_id is not None:
        stmt = stmt.where(c.c.team_id == flt.team_id)
    if flt.channels:
        stmt = stmt.where(c.c.channel.in_([ch.value for ch in flt.channels]))
    if flt.contact_id is not None:
        stmt = stmt.where(c.c.contact_id == flt.contact_id)
    if flt.tag:
        ct = schema.conversation_tags
        stmt = stmt.where(c.c.id.in_(select(ct.c.conversation_id).where(ct.c.tag == _tag(flt.tag))))
    if flt.breached:
        stmt = stmt.where(
            or_(
                and_(c.c.due_at.is_not(None), c.c.due_at < now),
                and_(c.c.promise_due_at.is_not(None), c.c.promise_due_at < now),
            )
        )
    if flt.query:
        match = match_sql(dialect, flt.query)
        if match is None:
            return stmt.where(c.c.id.is_(None))
        sql, params = match
        matching = select(schema.messages.c.conversation_id).where(
            schema.messages.c.id.in_(text(sql).bindparams(**params))
        )
        stmt = stmt.where(c.c.id.in_(matching))
    return stmt


def _due_page(flt: ConversationFilter, dialect: str, now: datetime) -> Select[Any]:
    """The page sorted by SLA due (no due time last), merged from one index range per status.

    Each status is read in index order twice (with a due time, then without), at most
    offset + limit rows each, so no query sorts more than a few pages whatever the table size.
    """
    c = schema.conversations
    depth = flt.offset + flt.limit
    rest = replace(flt, statuses=())
    undated = _apply_filter(select(c), replace(rest, breached=False), dialect, now).where(
        c.c.due_at.is_(None)
    )
    if flt.breached:
        undated = undated.where(c.c.promise_due_at < now)
    parts = []
    for status in flt.statuses or tuple(ConversationStatus):
        same = _apply_filter(select(c), rest, dialect, now).where(c.c.status == status.value)
        parts.append(same.where(c.c.due_at.is_not(None)).order_by(c.c.due_at, c.c.id).limit(depth))
        parts.append(undated.where(c.c.status == status.value).order_by(c.c.id).limit(depth))
    merged = union_all(*(select(part.subquery()) for part in parts)).subquery()
    return (
        select(merged)
        .order_by(merged.c.due_at.is_(None), merged.c.due_at, merged.c.id)
        .limit(flt.limit)
        .offset(flt.offset)
    )


def _ordering(sort: SortOrder) -> list[Any]:
    c = schema.conversations
    if sort is SortOrder.DUE:
        return [c.c.due_at.is_(None), c.c.due_at, c.c.id]
    if sort is SortOrder.CREATED:
        return [c.c.created_at.desc(), c.c.id.desc()]
    if sort is SortOrder.PRIORITY:
        return [c.c.priority.desc(), c.c.updated_at.desc(), c.c.id.desc()]
    return [c.c.updated_at.desc(), c.c.id.desc()]
