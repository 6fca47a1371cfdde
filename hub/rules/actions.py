"""Applying a firing trigger's actions to a conversation, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import inbox
from hub.errors import HubError, NotFound
from hub.events import event_row, record
from hub.models import Priority
from hub.rules.triggers import Action, Firing, RuleEvent
from hub.store import schema
from hub.store.rows import by_id

Events = list[dict[str, Any]]


class ReplySender(Protocol):
    """Sends a templated reply (rendered, checked, queued in the outbox) in the caller's transaction."""

    async def send_template(
        self, conn: AsyncConnection, conversation_id: int, template: str, now: datetime
    ) -> Events:
        """Queue the reply; return the events recorded. Raise HubError if it cannot be sent."""
        ...


async def apply(
    conn: AsyncConnection,
    conversation_id: int,
    firing: Firing,
    event: RuleEvent,
    now: datetime,
    replies: ReplySender | None = None,
) -> Events:
    """Apply every action of a firing, then audit it as `rule.fired`; return all events recorded.

    An action that cannot be done (an unknown agent or team) is recorded as
    `rule.action_failed` and the others still run.
    """
    events: Events = []
    results: list[dict[str, Any]] = []
    for action in firing.actions:
        try:
            done = await _apply_one(conn, conversation_id, action, firing.trigger, now, replies)
        except HubError as err:
            failure = event_row(
                "rule.action_failed",
                now,
                conversation_id,
                trigger=firing.trigger,
                action=action.summary(),
                reason=str(err),
            )
            await record(conn, [failure])
            events.append(failure)
            results.append({**action.summary(), "failed": str(err)})
            continue
        events.extend(done)
        results.append(action.summary())
    audit = event_row(
        "rule.fired",
        now,
        conversation_id,
        trigger=firing.trigger,
        event=event.id,
        event_kind=event.kind,
        actions=results,
    )
    await record(conn, [audit])
    return [audit, *events]


async def _apply_one(
    conn: AsyncConnection,
    cid: int,
    action: Action,
    trigger: str,
    now: datetime,
    replies: ReplySender | None,
) -> Events:
    if action.assign is not None:
        agent_id = await _agent_id(conn, action.assign.agent)
        await inbox.check_assignable(conn, agent_id)
        return await inbox.set_assignee(conn, cid, agent_id, None, now, trigger=trigger)
    if action.assign_round_robin is not None:
        team_id = await _team_id(conn, action.assign_round_robin.team)
        return await inbox.round_robin(conn, cid, team_id, None, now)
    if action.escalate is not None:
        return await _escalate(conn, cid, action.escalate.team, trigger, now)
    if action.tag is not None or action.untag is not None:
        return await inbox.change_tags(
            conn, cid, action.tag or (), action.untag or (), None, now, trigger=trigger
        )
    if action.set_priority is not None:
        return await _set_priority(conn, cid, action.set_priority, trigger, now)
    if action.set_status is not None:
        conv = await by_id(conn, schema.conversations, cid, "conversation")
        if conv["status"] == action.set_status.value:
            return []
        return await inbox.change_status(conn, cid, action.set_status, None, now, trigger=trigger)
    if action.add_note is not None:
        _, events = await inbox.insert_note(conn, cid, None, action.add_note.text, now)
        return events
    if action.notify_supervisors is not None:
        return await _recorded(
            event_row(
                "rules.notification", now, cid, trigger=trigger, message=action.notify_supervisors.message
            ),
            conn,
        )
    if action.reply_with_template is not None:
        template = action.reply_with_template.template
        if replies is not None:
            return await replies.send_template(conn, cid, template, now)
        return await _recorded(
            event_row("rules.reply_requested", now, cid, trigger=trigger, template=template), conn
        )
    raise AssertionError(f"unhandled action {action.name}")


async def _recorded(row: dict[str, Any], conn: AsyncConnection) -> Events:
    await record(conn, [row])
    return [row]


async def _set_priority(
    conn: AsyncConnection, cid: int, priority: Priority, trigger: str, now: datetime
) -> Events:
    conv = await by_id(conn, schema.conversations, cid, "conversation")
    if conv["priority"] == int(priority):
        return []
    return await inbox.change_priority(conn, cid, priority, None, now, trigger=trigger)


async def _escalate(conn: AsyncConnection, cid: int, team: str, trigger: str, now: datetime) -> Events:
    """Hand the conversation to another team: clear the assignee, then round-robin in that team."""
    team_id = await _team_id(conn, team)
    await conn.execute(
        update(schema.conversations)
        .where(schema.conversations.c.id == cid)
        .values(assignee_id=None, updated_at=now)
    )
    escalated = await _recorded(
        event_row("conversation.escalated", now, cid, trigger=trigger, team=team, team_id=team_id), conn
    )
    return escalated + await inbox.round_robin(conn, cid, team_id, None, now)


async def _agent_id(conn: AsyncConnection, username: str) -> int:
    found = (
        await conn.execute(select(schema.agents.c.id).where(schema.agents.c.username == username))
    ).scalar()
    if found is None:
        raise NotFound(f"no agent named {username!r}")
    return int(found)


async def _team_id(conn: AsyncConnection, name: str) -> int:
    found = (await conn.execute(select(schema.teams.c.id).where(schema.teams.c.name == name))).scalar()
    if found is None:
        raise NotFound(f"no team named {name!r}")
    return int(found)
