"""Agents, teams and API tokens: everyone may look, admins may change."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import Field

from hub.errors import Conflict
from hub.models import Availability, Role, to_dict
from hub.web.routing import Ctx, RouteTable, respond
from hub.web.schemas import Body, Language, Name

routes = RouteTable("directory")

RoleName = Literal["agent", "supervisor", "admin"]


class AgentCreate(Body):
    """A new user."""

    username: str = Field(pattern=r"^[A-Za-z0-9._@-]{1,100}$")
    password: str = Field(min_length=1, max_length=1024)
    role: RoleName
    display_name: Name | None = None
    language: Language = "en"


class AgentPatch(Body):
    """Changes to a user; a new password or deactivation ends their sessions."""

    display_name: Name | None = None
    role: RoleName | None = None
    availability: Availability | None = None
    language: Language | None = None
    active: bool | None = None
    password: str | None = Field(None, min_length=1, max_length=1024)


class TokenBody(Body):
    """What the token is for."""

    name: str = Field(min_length=1, max_length=100)


class TeamCreate(Body):
    """A new team."""

    name: str = Field(min_length=1, max_length=100)
    department: str | None = Field(None, min_length=1, max_length=100)


@routes.get("/api/agents", Role.AGENT)
async def list_agents(ctx: Ctx) -> web.StreamResponse:
    """Every user with their role, availability and teams."""
    return respond({"items": [to_dict(a) for a in await ctx.services.directory.agents()]})


@routes.post("/api/agents", Role.ADMIN, body=AgentCreate, status=201)
async def create_agent(ctx: Ctx) -> web.StreamResponse:
    """Create a user."""
    body = ctx.body(AgentCreate)
    agent = await ctx.services.directory.add_agent(
        body.username,
        body.password,
        Role[body.role.upper()],
        display_name=body.display_name,
        language=body.language,
    )
    return respond(to_dict(agent), status=201)


@routes.patch("/api/agents/{id}", Role.ADMIN, body=AgentPatch)
async def update_agent(ctx: Ctx) -> web.StreamResponse:
    """Change a user's role, status, password or details."""
    body = ctx.body(AgentPatch)
    agent_id = ctx.path_id()
    role = Role[body.role.upper()] if body.role is not None else None
    demoted = role is not None and role < Role.ADMIN
    if agent_id == ctx.agent.id and (body.active is False or demoted):
        raise Conflict("admins cannot deactivate or demote themselves")
    agent = await ctx.services.directory.update_agent(
        agent_id,
        display_name=body.display_name,
        role=role,
        availability=body.availability,
        language=body.language,
        active=body.active,
        password=body.password,
        by=ctx.agent.id,
    )
    return respond(to_dict(agent))


@routes.post("/api/agents/{id}/tokens", Role.ADMIN, body=TokenBody, status=201)
async def issue_token(ctx: Ctx) -> web.StreamResponse:
    """Issue an API token for a user; its secret is shown only in this answer."""
    agent_id, name = ctx.path_id(), ctx.body(TokenBody).name
    token = await ctx.services.directory.issue_token(agent_id, name)
    return respond({"agent_id": agent_id, "name": name, "token": token}, status=201)


@routes.get("/api/agents/{id}/tokens", Role.ADMIN)
async def list_tokens(ctx: Ctx) -> web.StreamResponse:
    """A user's API tokens: names and dates, never the secrets."""
    tokens = await ctx.services.directory.tokens(ctx.path_id())
    return respond({"items": [to_dict(t) for t in tokens]})


@routes.delete("/api/agents/{id}/tokens/{token_id}", Role.ADMIN, status=204)
async def revoke_token(ctx: Ctx) -> web.StreamResponse:
    """Revoke an API token at once."""
    assert ctx.auth is not None
    await ctx.services.directory.revoke_token(ctx.path_id(), ctx.path_id("token_id"), by=ctx.auth.agent.id)
    return web.Response(status=204)


@routes.get("/api/teams", Role.AGENT)
async def list_teams(ctx: Ctx) -> web.StreamResponse:
    """Every team."""
    return respond({"items": [to_dict(t) for t in await ctx.services.directory.teams()]})


@routes.post("/api/teams", Role.ADMIN, body=TeamCreate, status=201)
async def create_team(ctx: Ctx) -> web.StreamResponse:
    """Create a team."""
    body = ctx.body(TeamCreate)
    team = await ctx.services.directory.add_team(body.name, body.department)
    return respond(to_dict(team), status=201)


@routes.get("/api/teams/{id}/members", Role.AGENT)
async def team_members(ctx: Ctx) -> web.StreamResponse:
    """The agents of a team."""
    members = await ctx.services.directory.team_members(ctx.path_id())
    return respond({"items": [to_dict(a) for a in members]})


@routes.put("/api/teams/{id}/members/{agent_id}", Role.ADMIN, status=204)
async def add_member(ctx: Ctx) -> web.StreamResponse:
    """Put an agent in a team."""
    await ctx.services.directory.add_member(ctx.path_id(), ctx.path_id("agent_id"))
    return web.Response(status=204)


@routes.delete("/api/teams/{id}/members/{agent_id}", Role.ADMIN, status=204)
async def remove_member(ctx: Ctx) -> web.StreamResponse:
    """Take an agent out of a team."""
    team_id, agent_id = ctx.path_id(), ctx.path_id("agent_id")
    await ctx.services.directory.team(team_id)
    await ctx.services.directory.agent(agent_id)
    await ctx.services.directory.remove_member(team_id, agent_id)
    return web.Response(status=204)
