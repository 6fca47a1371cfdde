"""Logging in and out, and the caller's own profile."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from pydantic import Field

from hub.models import Availability, Role, to_dict
from hub.web.auth import clear_session_cookie, set_session_cookie
from hub.web.errors import TooManyRequests, Unauthorized
from hub.web.routing import Access, Ctx, RouteTable, respond
from hub.web.schemas import Body, Language, Name
from hub.web.throttle import THROTTLE

routes = RouteTable("session")

LOGIN_REFUSED = "wrong user name or password"


class LoginBody(Body):
    """Credentials."""

    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1024)


class ProfilePatch(Body):
    """What agents may change about themselves."""

    availability: Availability | None = None
    language: Language | None = None
    display_name: Name | None = None


ADDRESS_FACTOR = 3
"""One address may fail this many times the per-user limit (many people behind one NAT)."""


@routes.post("/api/login", Access.PUBLIC, body=LoginBody)
async def login(ctx: Ctx) -> web.StreamResponse:
    """Log in with user name and password; sets the session cookie, returns the CSRF token."""
    body = ctx.body(LoginBody)
    throttle = ctx.request.app[THROTTLE]
    address = ctx.request.remote or "unknown"
    key, per_address = (address, body.username.lower()), (address, "*")
    waits = [throttle.retry_after(key), throttle.retry_after(per_address, throttle.limit * ADDRESS_FACTOR)]
    if any(w is not None for w in waits):
        raise TooManyRequests("too many failed logins; try again later", max(w or 0 for w in waits))
    throttle.failed(key)
    throttle.failed(per_address)
    agent = await ctx.services.directory.authenticate(body.username, body.password)
    if agent is None:
        raise Unauthorized(LOGIN_REFUSED)
    throttle.succeeded(key)
    throttle.forgive_one(per_address)
    settings = ctx.services.config.web
    token, session = await ctx.services.directory.open_session(agent, timedelta(hours=settings.session_hours))
    response = respond(
        {
            "agent": to_dict(agent),
            "csrf_token": session.csrf_token,
            "expires_at": session.expires_at.isoformat(),
        }
    )
    set_session_cookie(response, token, settings)
    return response


@routes.post("/api/logout", Role.AGENT, status=204)
async def logout(ctx: Ctx) -> web.StreamResponse:
    """End the cookie session (API tokens stay valid)."""
    response = web.Response(status=204)
    assert ctx.auth is not None
    if ctx.auth.session_token is not None:
        await ctx.services.directory.close_session(ctx.auth.session_token)
        clear_session_cookie(response, ctx.services.config.web)
    return response


@routes.get("/api/me", Role.AGENT)
async def me(ctx: Ctx) -> web.StreamResponse:
    """The caller, and the CSRF token of their session if they use one."""
    assert ctx.auth is not None
    return respond({"agent": to_dict(ctx.agent), "csrf_token": ctx.auth.csrf_token})


@routes.patch("/api/me", Role.AGENT, body=ProfilePatch)
async def update_me(ctx: Ctx) -> web.StreamResponse:
    """Change one's availability, language or display name."""
    body = ctx.body(ProfilePatch)
    agent = await ctx.services.directory.update_agent(
        ctx.agent.id,
        availability=body.availability,
        language=body.language,
        display_name=body.display_name,
        by=ctx.agent.id,
    )
    return respond(to_dict(agent))
