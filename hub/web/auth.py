"""Who is calling: the session cookie or an API token, the role check and the CSRF check.

The check runs as middleware before the route's handler, so a caller without the role
learns nothing from lookups. Requests authenticated by cookie that change state must send
the session's CSRF token in `X-CSRF-Token`; requests with `Authorization: Bearer` need not,
since browsers never add that header on their own.
"""

from __future__ import annotations

import hmac
import logging
from datetime import timedelta

from aiohttp import web
from aiohttp.typedefs import Handler as AioHandler

from hub.config import WebSection
from hub.models import Role
from hub.web.errors import Forbidden, Unauthorized
from hub.web.keys import AUTH, SERVICES, Auth
from hub.web.routing import ROUTES, SAFE_METHODS, Access

log = logging.getLogger(__name__)

SESSION_COOKIE = "omnihub_session"
CSRF_HEADER = "X-CSRF-Token"
MAX_CREDENTIAL_LENGTH = 512


@web.middleware
async def auth_middleware(request: web.Request, handler: AioHandler) -> web.StreamResponse:
    """Refuse callers without the route's role before the handler does anything."""
    match = request.match_info
    if match.http_exception is not None:
        return await handler(request)
    spec = request.app[ROUTES].spec(match.route)
    if spec is None:
        log.error("refusing %s %s: the route has no declared role", request.method, request.path)
        raise Forbidden("this route is not open to anyone")
    if isinstance(spec.access, Access):
        return await handler(request)
    auth = await authenticate(request)
    if auth.by_session and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        assert auth.csrf_token is not None
        if not hmac.compare_digest(sent.encode(), auth.csrf_token.encode()):
            raise Forbidden(f"missing or wrong {CSRF_HEADER} header")
    if auth.agent.role < spec.access:
        raise Forbidden(f"this needs the {Role(spec.access).name.lower()} role")
    request[AUTH] = auth
    return await handler(request)


async def authenticate(request: web.Request) -> Auth:
    """The caller by API token (Authorization header) or by session cookie; 401 if neither."""
    directory = request.app[SERVICES].directory
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > MAX_CREDENTIAL_LENGTH:
            raise Unauthorized("the Authorization header must be `Bearer <token>`")
        agent = await directory.token_agent(token)
        if agent is None:
            raise Unauthorized("unknown or revoked API token")
        return Auth(agent)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie or len(cookie) > MAX_CREDENTIAL_LENGTH:
        raise Unauthorized()
    session = await directory.session(cookie)
    if session is None:
        raise Unauthorized("the session has ended; log in again")
    return Auth(session.agent, cookie, session.csrf_token)


def set_session_cookie(response: web.StreamResponse, token: str, settings: WebSection) -> None:
    """Give the browser its session cookie: HttpOnly, SameSite=Lax, Secure if configured."""
    lifetime = timedelta(hours=settings.session_hours)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(lifetime.total_seconds()),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=settings.secure_cookies,
    )


def clear_session_cookie(response: web.StreamResponse, settings: WebSection) -> None:
    """Tell the browser to forget its session cookie."""
    response.del_cookie(
        SESSION_COOKIE, path="/", secure=settings.secure_cookies, httponly=True, samesite="Lax"
    )
