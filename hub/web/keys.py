"""Typed keys for what the web app keeps on the application and on each request."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from hub.models import Agent
from hub.services import Services


@dataclass(frozen=True, slots=True)
class Auth:
    """Who made a request and how: by session cookie (with its CSRF token) or by API token."""

    agent: Agent
    session_token: str | None = None
    csrf_token: str | None = None

    @property
    def by_session(self) -> bool:
        """Whether the request was authenticated by the session cookie."""
        return self.session_token is not None


SERVICES = web.AppKey("services", Services)
AUTH = web.RequestKey("auth", Auth)
