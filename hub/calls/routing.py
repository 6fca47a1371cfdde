"""Who a call rings: the available agents of a team, longest idle first (round-robin)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.errors import Conflict, NotFound
from hub.models import Availability
from hub.store import schema


@dataclass(frozen=True, slots=True)
class Ringable:
    """An agent a call may ring."""

    agent_id: int
    username: str
    display_name: str


@dataclass(frozen=True, slots=True)
class TeamRing:
    """A team and the agents to ring at once."""

    team_id: int | None
    name: str
    department: str | None
    agents: tuple[Ringable, ...]


async def team_ring(conn: AsyncConnection, team: str) -> TeamRing:
    """The team's available, active agents, the one assigned longest ago first; none if no such team."""
    t, tm, a = schema.teams, schema.team_members, schema.agents
    found = (await conn.execute(select(t.c.id, t.c.department).where(t.c.name == team))).first()
    if found is None:
        return TeamRing(None, team, None, ())
    rows = await conn.execute(
        select(a.c.id, a.c.username, a.c.display_name)
        .join(tm, tm.c.agent_id == a.c.id)
        .where(
            tm.c.team_id == found.id,
            a.c.active.is_(True),
            a.c.availability == Availability.AVAILABLE.value,
        )
        .order_by(tm.c.last_assigned_seq.is_(None).desc(), tm.c.last_assigned_seq, a.c.id)
    )
    agents = tuple(Ringable(r.id, r.username, r.display_name) for r in rows)
    return TeamRing(found.id, team, found.department, agents)


async def agent_ringable(conn: AsyncConnection, agent_id: int) -> tuple[Ringable, str | None] | None:
    """An agent and why they cannot take a call now (None if they can); None if no such agent."""
    a = schema.agents
    row = (
        await conn.execute(
            select(a.c.id, a.c.username, a.c.display_name, a.c.active, a.c.availability).where(
                a.c.id == agent_id
            )
        )
    ).first()
    if row is None:
        return None
    reason = None
    if not row.active:
        reason = f"{row.display_name} is deactivated"
    elif row.availability != Availability.AVAILABLE.value:
        reason = f"{row.display_name} is {row.availability}, not available"
    return Ringable(row.id, row.username, row.display_name), reason


async def available_agent(conn: AsyncConnection, agent_id: int, doing: str) -> Ringable:
    """An agent who can take a call now; NotFound, or Conflict saying why they cannot `doing` it."""
    found = await agent_ringable(conn, agent_id)
    if found is None:
        raise NotFound(f"agent {agent_id} does not exist")
    agent, why = found
    if why is not None:
        raise Conflict(f"cannot {doing}: {why}")
    return agent


async def agent_department(conn: AsyncConnection, agent_id: int) -> str | None:
    """The department of an agent's first team (what a caller is told on a transfer, P4)."""
    t, tm = schema.teams, schema.team_members
    found = await conn.execute(
        select(t.c.department)
        .join(tm, tm.c.team_id == t.c.id)
        .where(tm.c.agent_id == agent_id)
        .order_by(t.c.id)
    )
    return found.scalars().first()
