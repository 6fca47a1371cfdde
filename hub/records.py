"""Turn database rows into model records."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, RowMapping, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.models import (
    Agent,
    Attachment,
    Availability,
    Call,
    CallOutcome,
    ChannelKind,
    Contact,
    Conversation,
    ConversationStatus,
    Direction,
    Event,
    Identity,
    IdentityKind,
    Message,
    OutboundStatus,
    Priority,
    Role,
    Team,
)
from hub.store import schema

R = TypeVar("R")


def from_row(cls: type[R], row: RowMapping | Mapping[str, Any], **converted: Any) -> R:
    """A record whose fields are named like the row's columns; `converted` gives typed values."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    return cls(**{f.name: converted[f.name] if f.name in converted else row[f.name] for f in fields})


def contact(row: RowMapping, identities: Sequence[RowMapping] = ()) -> Contact:
    """A contact from a `contacts` row and its `identities` rows."""
    return Contact(
        id=row["id"],
        name=row["name"],
        language=row["language"],
        timezone=row["timezone"],
        created_at=row["created_at"],
        identities=tuple(Identity(IdentityKind(i["kind"]), i["address"]) for i in identities),
        merged_into=row["merged_into"],
    )


def conversation(row: RowMapping, tags: Sequence[str] = ()) -> Conversation:
    """A conversation from a `conversations` row."""
    return Conversation(
        id=row["id"],
        contact_id=row["contact_id"],
        channel=ChannelKind(row["channel"]),
        channel_account=row["channel_account"],
        subject=row["subject"],
        status=ConversationStatus(row["status"]),
        priority=Priority(row["priority"]),
        assignee_id=row["assignee_id"],
        team_id=row["team_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        last_message_at=row["last_message_at"],
        last_inbound_at=row["last_inbound_at"],
        snoozed_until=row["snoozed_until"],
        due_at=row["due_at"],
        promise_due_at=row["promise_due_at"],
        tags=tuple(sorted(tags)),
    )


def attachment(row: RowMapping) -> Attachment:
    """An attachment from an `attachments` row."""
    return Attachment(
        id=row["id"],
        message_id=row["message_id"],
        filename=row["filename"],
        content_type=row["content_type"],
        size=row["size"],
        sha256=row["sha256"],
    )


def message(row: RowMapping, attachments: Sequence[Attachment] = (), delivery: str | None = None) -> Message:
    """A message from a `messages` row, its attachments and its outbox status."""
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        direction=Direction(row["direction"]),
        channel=ChannelKind(row["channel"]),
        channel_account=row["channel_account"],
        external_id=row["external_id"],
        sender=row["sender"],
        author_id=row["author_id"],
        subject=row["subject"],
        text=row["text"],
        html=row["html"],
        created_at=row["created_at"],
        delivery=OutboundStatus(delivery) if delivery else None,
        automatic=bool(row["automatic"]),
        meta=dict(row["meta"] or {}),
        attachments=tuple(attachments),
    )


def agent(row: RowMapping, teams: Sequence[int] = ()) -> Agent:
    """An agent from an `agents` row."""
    return Agent(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        role=Role(row["role"]),
        availability=Availability(row["availability"]),
        language=row["language"],
        active=bool(row["active"]),
        teams=tuple(teams),
    )


def team(row: RowMapping) -> Team:
    """A team from a `teams` row."""
    return Team(id=row["id"], name=row["name"], department=row["department"])


def call(row: RowMapping) -> Call:
    """A call from a `calls` row."""
    return Call(
        id=row["id"],
        conversation_id=row["conversation_id"],
        contact_id=row["contact_id"],
        external_id=row["external_id"],
        direction=Direction(row["direction"]),
        started_at=row["started_at"],
        ringing_at=row["ringing_at"],
        answered_at=row["answered_at"],
        ended_at=row["ended_at"],
        answered_by=row["answered_by"],
        outcome=CallOutcome(row["outcome"]),
        rings_to_answer=row["rings_to_answer"],
        line=row["line"],
        team_id=row["team_id"],
        route=row["route"],
        time_to_answer_seconds=row["time_to_answer_seconds"],
        duration_seconds=row["duration_seconds"],
        wrapped_up_at=row["wrapped_up_at"],
        summary_note_id=row["summary_note_id"],
        queue_prompted_at=row["queue_prompted_at"],
    )


def event(row: RowMapping) -> Event:
    """An audit event from an `events` row."""
    data: dict[str, Any] = dict(row["data"] or {})
    return Event(
        id=row["id"],
        at=row["at"],
        kind=row["kind"],
        conversation_id=row["conversation_id"],
        agent_id=row["agent_id"],
        data=data,
    )


V = TypeVar("V")


async def latest_inbound(conn: AsyncConnection, conversation_id: int, column: ColumnElement[V]) -> V | None:
    """One column of the conversation's latest inbound message, or None if it has none."""
    m = schema.messages
    return (
        await conn.execute(
            select(column)
            .where(m.c.conversation_id == conversation_id, m.c.direction == Direction.INBOUND.value)
            .order_by(m.c.created_at.desc(), m.c.id.desc())
            .limit(1)
        )
    ).scalar()
