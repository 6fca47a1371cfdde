"""Agents, teams and how people prove who they are: passwords, sessions and API tokens."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from hub import records
from hub.clock import Clock, utcnow
from hub.errors import Conflict, Invalid, NotFound
from hub.events import EventBus, event_row, record
from hub.models import Agent, Availability, Role, Team
from hub.store import Database, schema
from hub.store.rows import all_of, by_id
from hub.store.upsert import insert_ignore

MIN_PASSWORD_LENGTH = 10
TOKEN_USE_RESOLUTION = timedelta(minutes=5)
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a real password, only for constant-time refusals")


@dataclass(frozen=True, slots=True)
class ApiToken:
    """An API token's record; the secret itself is shown once when issued and never stored."""

    id: int
    agent_id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in browser session."""

    agent: Agent
    csrf_token: str
    expires_at: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Directory:
    """The people who use the hub, their teams, and their credentials."""

    def __init__(self, db: Database, clock: Clock = utcnow, bus: EventBus | None = None) -> None:
        self.db = db
        self.clock = clock
        self.bus = bus if bus is not None else EventBus()

    # Agents

    async def add_agent(
        self,
        username: str,
        password: str | None,
        role: Role,
        *,
        display_name: str | None = None,
        language: str = "en",
        availability: Availability = Availability.AWAY,
    ) -> Agent:
        """Create a user; raise Conflict if the name is taken or the password too short."""
        password_hash = await _hash(password) if password is not None else None
        try:
            async with self.db.write() as conn:
                aid = (
                    await conn.execute(
                        insert(schema.agents).returning(schema.agents.c.id),
                        {
                            "username": username,
                            "display_name": display_name or username,
                            "role": int(role),
                            "password_hash": password_hash,
                            "availability": availability.value,
                            "language": language,
                            "active": True,
                            "created_at": self.clock(),
                        },
                    )
                ).scalar_one()
                events = [
                    event_row("agent.created", self.clock(), None, None, agent=aid, role=role.name.lower())
                ]
                await record(conn, events)
        except IntegrityError:
            raise Conflict(f"a user named {username!r} already exists") from None
        self.bus.publish(events)
        return await self.agent(aid)

    async def agent(self, agent_id: int) -> Agent:
        """One agent with the ids of their teams; raise NotFound."""
        async with self.db.read() as conn:
            row = await by_id(conn, schema.agents, agent_id, "agent")
            teams = (
                (
                    await conn.execute(
                        select(schema.team_members.c.team_id)
                        .where(schema.team_members.c.agent_id == agent_id)
                        .order_by(schema.team_members.c.team_id)
                    )
                )
                .scalars()
                .all()
            )
        return records.agent(row, teams)

    async def agent_by_name(self, username: str) -> Agent:
        """One agent by user name; raise NotFound."""
        async with self.db.read() as conn:
            aid = (
                await conn.execute(select(schema.agents.c.id).where(schema.agents.c.username == username))
            ).scalar()
        if aid is None:
            raise NotFound(f"no user named {username!r}")
        return await self.agent(aid)

    async def agents(self) -> list[Agent]:
        """Every agent, with their teams."""
        async with self.db.read() as conn:
            rows = await all_of(conn, select(schema.agents).order_by(schema.agents.c.id))
            members = (await conn.execute(select(schema.team_members))).all()
        teams: dict[int, list[int]] = {}
        for m in members:
            teams.setdefault(m.agent_id, []).append(m.team_id)
        return [records.agent(r, sorted(teams.get(r["id"], []))) for r in rows]

    async def update_agent(
        self,
        agent_id: int,
        *,
        display_name: str | None = None,
        role: Role | None = None,
        availability: Availability | None = None,
        language: str | None = None,
        active: bool | None = None,
        password: str | None = None,
        by: int | None = None,
    ) -> Agent:
        """Change an agent's details; changing the password ends their sessions."""
        values: dict[str, object] = {}
        if display_name is not None:
            values["display_name"] = display_name
        if role is not None:
            values["role"] = int(role)
        if availability is not None:
            values["availability"] = availability.value
        if language is not None:
            values["language"] = language
        if active is not None:
            values["active"] = active
        if password is not None:
            values["password_hash"] = await _hash(password)
        if not values:
            return await self.agent(agent_id)
        async with self.db.write() as conn:
            done = await conn.execute(
                update(schema.agents).where(schema.agents.c.id == agent_id).values(**values)
            )
            if done.rowcount == 0:
                raise NotFound(f"agent {agent_id} does not exist")
            if password is not None or active is False:
                await conn.execute(delete(schema.sessions).where(schema.sessions.c.agent_id == agent_id))
            changed = sorted(k if k != "password_hash" else "password" for k in values)
            events = [event_row("agent.updated", self.clock(), None, by, agent=agent_id, changed=changed)]
            await record(conn, events)
        self.bus.publish(events)
        return await self.agent(agent_id)

    # Teams

    async def add_team(self, name: str, department: str | None = None) -> Team:
        """Create a team; raise Conflict if the name is taken."""
        try:
            async with self.db.write() as conn:
                tid = (
                    await conn.execute(
                        insert(schema.teams).returning(schema.teams.c.id),
                        {"name": name, "department": department},
                    )
                ).scalar_one()
        except IntegrityError:
            raise Conflict(f"a team named {name!r} already exists") from None
        self.bus.publish([event_row("team.created", self.clock(), None, None, team=tid)])
        return Team(tid, name, department)

    async def teams(self) -> list[Team]:
        """Every team."""
        async with self.db.read() as conn:
            rows = await all_of(conn, select(schema.teams).order_by(schema.teams.c.id))
        return [records.team(r) for r in rows]

    async def team(self, team_id: int) -> Team:
        """One team; raise NotFound."""
        async with self.db.read() as conn:
            row = await by_id(conn, schema.teams, team_id, "team")
        return records.team(row)

    async def team_members(self, team_id: int) -> list[Agent]:
        """The agents of a team."""
        await self.team(team_id)
        return [a for a in await self.agents() if team_id in a.teams]

    async def add_member(self, team_id: int, agent_id: int) -> None:
        """Put an agent in a team (no-op if already there)."""
        await self.team(team_id)
        await self.agent(agent_id)
        async with self.db.write() as conn:
            await conn.execute(
                insert_ignore(conn, schema.team_members), {"team_id": team_id, "agent_id": agent_id}
            )
        self.bus.publish(
            [event_row("team.member_added", self.clock(), None, None, team=team_id, agent=agent_id)]
        )

    async def remove_member(self, team_id: int, agent_id: int) -> None:
        """Take an agent out of a team."""
        async with self.db.write() as conn:
            await conn.execute(
                delete(schema.team_members).where(
                    schema.team_members.c.team_id == team_id, schema.team_members.c.agent_id == agent_id
                )
            )
        self.bus.publish(
            [event_row("team.member_removed", self.clock(), None, None, team=team_id, agent=agent_id)]
        )

    # Credentials

    async def authenticate(self, username: str, password: str) -> Agent | None:
        """The agent if the password is right and the account active; None otherwise."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(schema.agents.c.id, schema.agents.c.password_hash, schema.agents.c.active).where(
                        schema.agents.c.username == username
                    )
                )
            ).first()
        stored = row.password_hash if row is not None and row.password_hash else _DUMMY_HASH
        ok = await _verify(stored, password)
        if row is None or not row.password_hash or not ok or not row.active:
            return None
        return await self.agent(row.id)

    async def open_session(self, agent: Agent, lifetime: timedelta) -> tuple[str, Session]:
        """Start a session; return its secret token (for the cookie) and the session."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        now = self.clock()
        async with self.db.write() as conn:
            await conn.execute(delete(schema.sessions).where(schema.sessions.c.expires_at < now))
            await conn.execute(
                insert(schema.sessions),
                {
                    "token_hash": _digest(token),
                    "agent_id": agent.id,
                    "csrf_token": csrf,
                    "created_at": now,
                    "expires_at": now + lifetime,
                },
            )
            await record(conn, [event_row("agent.logged_in", now, None, agent.id)])
        return token, Session(agent, csrf, now + lifetime)

    async def session(self, token: str) -> Session | None:
        """The live session for a cookie token, or None."""
        s = schema.sessions
        async with self.db.read() as conn:
            row = (await conn.execute(select(s).where(s.c.token_hash == _digest(token)))).mappings().first()
        if row is None or row["expires_at"] <= self.clock():
            return None
        agent = await self.agent(row["agent_id"])
        return Session(agent, row["csrf_token"], row["expires_at"]) if agent.active else None

    async def close_session(self, token: str) -> None:
        """End a session (log out)."""
        async with self.db.write() as conn:
            await conn.execute(delete(schema.sessions).where(schema.sessions.c.token_hash == _digest(token)))

    async def issue_token(self, agent_id: int, name: str) -> str:
        """Create an API token for scripts; the secret is returned once and stored hashed."""
        await self.agent(agent_id)
        token = "ohk_" + secrets.token_urlsafe(32)
        async with self.db.write() as conn:
            await conn.execute(
                insert(schema.api_tokens),
                {
                    "agent_id": agent_id,
                    "name": name,
                    "token_hash": _digest(token),
                    "created_at": self.clock(),
                },
            )
            await record(conn, [event_row("token.issued", self.clock(), None, agent_id, name=name)])
        return token

    async def tokens(self, agent_id: int) -> list[ApiToken]:
        """An agent's API tokens (never their secrets)."""
        await self.agent(agent_id)
        t = schema.api_tokens
        async with self.db.read() as conn:
            rows = (await conn.execute(select(t).where(t.c.agent_id == agent_id).order_by(t.c.id))).mappings()
            return [
                ApiToken(r["id"], r["agent_id"], r["name"], r["created_at"], r["last_used_at"]) for r in rows
            ]

    async def revoke_token(self, agent_id: int, token_id: int, by: int | None = None) -> None:
        """Delete an API token; raise NotFound if the agent has no such token."""
        t = schema.api_tokens
        async with self.db.write() as conn:
            done = await conn.execute(delete(t).where(t.c.id == token_id, t.c.agent_id == agent_id))
            if done.rowcount == 0:
                raise NotFound(f"agent {agent_id} has no token {token_id}")
            await record(
                conn, [event_row("token.revoked", self.clock(), None, by, agent=agent_id, token=token_id)]
            )

    async def token_agent(self, token: str) -> Agent | None:
        """The agent an API token belongs to, if the token is valid and the agent active."""
        t = schema.api_tokens
        digest, now = _digest(token), self.clock()
        async with self.db.read() as conn:
            row = (
                await conn.execute(select(t.c.agent_id, t.c.last_used_at).where(t.c.token_hash == digest))
            ).first()
        if row is None:
            return None
        if row.last_used_at is None or now - row.last_used_at > TOKEN_USE_RESOLUTION:
            async with self.db.write() as conn:
                await conn.execute(update(t).where(t.c.token_hash == digest).values(last_used_at=now))
        agent = await self.agent(row.agent_id)
        return agent if agent.active else None


async def _hash(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"passwords need at least {MIN_PASSWORD_LENGTH} characters", "password")
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(stored: str, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)
