"""Loading what SLA clocks need from the store, many conversations at a time.

For each conversation: the facts policies match on, and its history as `Step`s (customer
messages, replies, automatic replies, status changes). Failed outbound messages are not
replies. An acknowledgement that carried a reply-time promise (`meta.promise_due_at`) is
returned as a `PromiseStep`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.models import ConversationStatus, Direction, Priority
from hub.rules.conditions import Facts
from hub.sla.deadlines import Step, StepKind
from hub.store import schema

STATUS_EVENTS = ("conversation.status_changed", "conversation.reopened")


@dataclass(frozen=True, slots=True)
class PromiseStep:
    """A promise made to the customer at `at`, due at `due_at`."""

    at: datetime
    due_at: datetime


@dataclass(slots=True)
class History:
    """One conversation as SLA clocks see it."""

    conversation_id: int
    facts: Facts
    team_id: int | None
    assignee_id: int | None
    status: ConversationStatus
    steps: list[Step] = field(default_factory=list)
    promises: list[PromiseStep] = field(default_factory=list)


async def load(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, History]:
    """Histories of the given conversations (missing ids are left out)."""
    if not ids:
        return {}
    histories = await _conversations(conn, ids, await _tags(conn, ids), await _first_inbound(conn, ids))
    await _messages(conn, histories)
    await _status_changes(conn, histories)
    for h in histories.values():
        h.steps.sort(key=lambda s: s.at)
    return histories


async def _conversations(
    conn: AsyncConnection,
    ids: Sequence[int],
    tags: dict[int, frozenset[str]],
    first: dict[int, tuple[str, str]],
) -> dict[int, History]:
    c, t, a = schema.conversations, schema.teams, schema.agents
    rows = await conn.execute(
        select(
            c.c.id,
            c.c.channel,
            c.c.channel_account,
            c.c.subject,
            c.c.status,
            c.c.priority,
            c.c.team_id,
            c.c.assignee_id,
            t.c.name.label("team"),
            a.c.username.label("assignee"),
            schema.contacts.c.name.label("contact_name"),
            schema.contacts.c.language,
        )
        .select_from(
            c.outerjoin(t, t.c.id == c.c.team_id)
            .outerjoin(a, a.c.id == c.c.assignee_id)
            .join(schema.contacts, schema.contacts.c.id == c.c.contact_id)
        )
        .where(c.c.id.in_(ids))
    )
    out = {}
    for r in rows:
        sender, body = first.get(r.id, ("", ""))
        facts = Facts(
            channel=r.channel,
            mailbox=r.channel_account,
            subject=r.subject or "",
            body=body,
            sender=sender,
            language=r.language or "",
            tags=tags.get(r.id, frozenset()),
            priority=Priority(r.priority).name.lower(),
            status=r.status,
            team=r.team,
            assignee=r.assignee,
            in_business_hours=None,
            contact_name=r.contact_name,
            conversation_id=r.id,
        )
        out[r.id] = History(r.id, facts, r.team_id, r.assignee_id, ConversationStatus(r.status))
    return out


async def _tags(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, frozenset[str]]:
    ct = schema.conversation_tags
    found: dict[int, set[str]] = defaultdict(set)
    for cid, tag in await conn.execute(
        select(ct.c.conversation_id, ct.c.tag).where(ct.c.conversation_id.in_(ids))
    ):
        found[cid].add(tag)
    return {cid: frozenset(tags) for cid, tags in found.items()}


async def _first_inbound(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """Sender and text of each conversation's first customer message, which conditions match on."""
    m = schema.messages
    first = (
        select(func.min(m.c.id).label("id"))
        .where(m.c.conversation_id.in_(ids), m.c.direction == Direction.INBOUND.value)
        .group_by(m.c.conversation_id)
        .subquery()
    )
    rows = await conn.execute(
        select(m.c.conversation_id, m.c.sender, m.c.text).join(first, first.c.id == m.c.id)
    )
    return {cid: (sender or "", text) for cid, sender, text in rows}


async def _messages(conn: AsyncConnection, histories: dict[int, History]) -> None:
    m, o = schema.messages, schema.outbox
    rows = await conn.execute(
        select(m.c.conversation_id, m.c.direction, m.c.automatic, m.c.created_at, o.c.status)
        .select_from(m.outerjoin(o, o.c.message_id == m.c.id))
        .where(m.c.conversation_id.in_(histories), m.c.direction != Direction.NOTE.value)
    )
    for cid, direction, automatic, at, outbox_status in rows:
        if direction == Direction.INBOUND.value:
            kind = StepKind.INBOUND
        elif outbox_status == "failed":
            continue
        else:
            kind = StepKind.AUTO_REPLY if automatic else StepKind.REPLY
        histories[cid].steps.append(Step(at, kind))
    promised = await conn.execute(
        select(m.c.conversation_id, m.c.created_at, m.c.meta).where(
            and_(m.c.conversation_id.in_(histories), m.c.automatic, m.c.direction == Direction.OUTBOUND.value)
        )
    )
    for cid, at, meta in promised:
        due = (meta or {}).get("promise_due_at")
        if due:
            histories[cid].promises.append(PromiseStep(at, datetime.fromisoformat(due)))


async def _status_changes(conn: AsyncConnection, histories: dict[int, History]) -> None:
    e = schema.events
    rows = await conn.execute(
        select(e.c.conversation_id, e.c.at, e.c.kind, e.c.data).where(
            e.c.conversation_id.in_(histories), e.c.kind.in_(STATUS_EVENTS)
        )
    )
    for cid, at, kind, data in rows:
        new = ConversationStatus.OPEN.value if kind == "conversation.reopened" else (data or {}).get("new")
        if isinstance(new, str) and new in ConversationStatus._value2member_map_:
            histories[cid].steps.append(Step(at, StepKind.STATUS, ConversationStatus(new)))
