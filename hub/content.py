"""Filling in messages that were stored from their envelope alone (`InboundMessage.content_pending`).

A channel that stores mail from its headers first (dedupe, contact, threading and its
cursor need nothing more) hands the full content over later. `complete` writes the text,
HTML, attachments and metadata, replaces the search terms, and queues the message's
`message.received` rule event, in one transaction with the removal of the message's
`pending_content` row: triggers see each message once and whole, across crashes and with
several processes (a row another process completed first is skipped).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Executable, and_, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.events import event_row
from hub.models import InboundMessage
from hub.pickling import quick_pickle
from hub.prepare import IngestLimits, Prepared, prepare
from hub.rules import queue as rule_queue
from hub.store import Database, bulk, schema
from hub.store.blobs import BlobBatch
from hub.store.search import reindex_messages

if TYPE_CHECKING:
    from hub.inbox import Inbox

PENDING_FLAG = "content_pending"
"""The `meta` key a stored message carries while its content is still to come."""


@dataclass(frozen=True, slots=True)
class Pending:
    """A stored message whose content is still to come, with what its channel needs to read it."""

    message_id: int
    channel_account: str
    raw_sha256: str | None
    received_at: datetime
    meta: dict[str, Any]
    raw: bytes | None = None
    """The raw bytes where they were stored with the message (else see `raw_sha256`)."""


@quick_pickle
@dataclass(frozen=True, slots=True)
class Filled:
    """The content of a pending message, prepared (`hub.prepare`), or why it could not be read."""

    message_id: int
    prepared: Prepared | None = None
    error: str | None = None


def fill(blobs: BlobBatch, limits: IngestLimits, message_id: int, message: InboundMessage) -> Filled:
    """Prepare a fully read message as the content of a pending one (blocking: its blobs are
    written; commit `blobs` before `complete`)."""
    return Filled(message_id, prepare(blobs, limits, dataclasses.replace(message, raw=None)))


async def hold(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Record messages stored without their content (`message_id`, `channel_account`, `event_at`,
    `new_conversation`), in the storing transaction."""
    await bulk.insert(conn, schema.pending_content, rows)


async def pending(db: Database, channel_account: str, limit: int = 100) -> list[Pending]:
    """The oldest messages of an account still waiting for their content."""
    p, m, r = schema.pending_content, schema.messages, schema.message_raw
    stmt = (
        select(p.c.message_id, p.c.channel_account, m.c.raw_sha256, m.c.created_at, m.c.meta, r.c.data)
        .join(m, m.c.id == p.c.message_id)
        .outerjoin(r, r.c.message_id == p.c.message_id)
        .where(p.c.channel_account == channel_account)
        .order_by(p.c.message_id)
        .limit(limit)
    )
    async with db.read() as conn:
        rows = (await conn.execute(stmt)).all()
    return [
        Pending(r.message_id, r.channel_account, r.raw_sha256, r.created_at, dict(r.meta), r.data)
        for r in rows
    ]


async def count(db: Database, channel_account: str | None = None) -> int:
    """How many messages are waiting for their content (of one account, or all)."""
    p = schema.pending_content
    stmt = select(func.count()).select_from(p)
    if channel_account is not None:
        stmt = stmt.where(p.c.channel_account == channel_account)
    async with db.read() as conn:
        return int((await conn.execute(stmt)).scalar_one())


async def complete(inbox: Inbox, filled: Sequence[Filled]) -> list[int]:
    """Write the content of pending messages and hand them to the rules; return the ids this
    call completed (ids already completed elsewhere are left alone)."""
    if not filled:
        return []
    now = inbox.clock()
    async with inbox.db.write() as conn:
        taken = await _take(conn, [f.message_id for f in filled])
        if not taken:
            return []
        stored = await _stored(conn, list(taken))
        await _write(conn, stored, [f for f in filled if f.message_id in taken])
        events = [
            event_row(
                "message.received", taken[mid][0], stored[mid][0], message_id=mid, channel=stored[mid][2]
            )
            for mid in sorted(taken)
        ]
        starts = frozenset(stored[mid][0] for mid, (_, new) in taken.items() if new)
        await rule_queue.enqueue(conn, events, now, new_conversations=starts)
    inbox.bus.publish(
        event_row("message.completed", now, stored[mid][0], message_id=mid) for mid in sorted(taken)
    )
    return sorted(taken)


async def _take(conn: AsyncConnection, ids: list[int]) -> dict[int, tuple[datetime, bool]]:
    """Remove the pending rows of `ids`; those that were there: id -> (event time, new conversation)."""
    p = schema.pending_content
    rows = await conn.execute(
        delete(p).where(p.c.message_id.in_(ids)).returning(p.c.message_id, p.c.event_at, p.c.new_conversation)
    )
    return {r.message_id: (r.event_at, bool(r.new_conversation)) for r in rows}


async def _stored(conn: AsyncConnection, ids: list[int]) -> dict[int, tuple[int, dict[str, Any], str]]:
    """id -> (conversation, stored meta, channel) of the messages being completed."""
    meta_of = bulk.json_reader(conn)
    rows = await bulk.fetch(conn, _stored_query, ids=bulk.listed(conn, ids))
    return {mid: (cid, dict(meta_of(meta)), channel) for mid, cid, meta, channel in rows}


@bulk.statement
def _stored_query(pg: bool) -> Executable:
    m = schema.messages
    return select(m.c.id, m.c.conversation_id, m.c.meta, m.c.channel).where(bulk.in_list(pg, m.c.id))


async def _write(
    conn: AsyncConnection, stored: dict[int, tuple[int, dict[str, Any], str]], filled: list[Filled]
) -> None:
    rows: list[tuple[int, str, str | None, dict[str, Any]]] = []
    failed: list[tuple[int, dict[str, Any]]] = []
    attachments: list[dict[str, Any]] = []
    terms: list[dict[str, Any]] = []
    languages: list[dict[str, Any]] = []
    for f in filled:
        cid, meta, _channel = stored[f.message_id]
        meta.pop(PENDING_FLAG, None)
        p = f.prepared
        if p is None:
            failed.append((f.message_id, {**meta, "content_error": f.error or "no content"}))
            continue
        m = p.message
        notes = [*meta.get("ingest_notes", ()), *p.notes]
        merged = {**meta, **m.meta, **({"ingest_notes": notes} if notes else {})}
        rows.append((f.message_id, m.text, m.html, merged))
        attachments.extend({**a, "message_id": f.message_id} for a in p.attachments)
        terms.append({"id": f.message_id, "terms": p.terms})
        if m.language:
            languages.append({"cid": cid, "found": m.language})
    m_t = schema.messages
    await bulk.update(conn, m_t, ["id"], rows, columns=("id", "text", "html", "meta"))
    await bulk.update(conn, m_t, ["id"], failed, columns=("id", "meta"))
    await bulk.insert(conn, schema.attachments, attachments)
    await reindex_messages(conn, terms)
    if languages:
        c, k = schema.conversations, schema.contacts
        owner = select(c.c.contact_id).where(c.c.id == bindparam("cid")).scalar_subquery()
        await conn.execute(
            update(k)
            .where(and_(k.c.id == owner, k.c.language.is_(None)))
            .values(language=bindparam("found")),
            languages,
        )
