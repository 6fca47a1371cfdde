"""OAuth2 access tokens for XOAUTH2 logins (IMAP and SMTP), from a refresh-token grant.

`TokenSource` asks the provider's token endpoint for an access token (RFC 6749 section 6:
`grant_type=refresh_token`, client id and secret in the form), keeps it until shortly before
it expires, and asks again when a server refuses it (`refused`). Concurrent logins share one
request. A new refresh token in the answer (rotation, as Microsoft does) replaces the old one
for this process. A refused grant (`invalid_grant`, a wrong client) needs a person and raises
ChannelAuthError; anything else (network, 5xx) is transient. Secrets never appear in errors.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from hub.config import Secret
from hub.errors import ChannelAuthError, ChannelUnavailable

TIMEOUT_SECONDS = 30.0


class Tokens(Protocol):
    """Where XOAUTH2 logins get their access token."""

    async def token(self) -> str:
        """A token believed valid now."""

    def refused(self, token: str) -> None:
        """A server refused `token`: the next `token()` must not return it."""


class OAuthSettings(BaseModel):
    """`[channels.oauth]`: the refresh-token grant of an account's XOAUTH2 logins.

    `token_url` is the provider's token endpoint (e.g. `https://oauth2.googleapis.com/token`,
    `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`); `client_secret` and
    `refresh_token` may be `env:VARIABLE`. A token is renewed `refresh_margin_seconds`
    before it expires.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    token_url: str = Field(pattern=r"^https?://")
    client_id: str = Field(min_length=1)
    client_secret: Secret | None = None
    refresh_token: Secret
    scope: str | None = None
    refresh_margin_seconds: float = Field(60, ge=0)


@dataclass(frozen=True, slots=True)
class StaticToken:
    """A fixed access token from the configuration (it cannot be renewed)."""

    value: str

    async def token(self) -> str:
        """The configured token."""
        return self.value

    def refused(self, token: str) -> None:
        """Nothing to renew."""


class TokenSource:
    """Access tokens from a refresh-token grant, cached until shortly before they expire."""

    def __init__(
        self,
        settings: OAuthSettings,
        http: Callable[[], aiohttp.ClientSession],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.http = http
        self.clock = clock
        self.requests = 0
        self._refresh_token = settings.refresh_token.get_secret_value()
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        """The cached token, or a new one when it is about to expire or was refused."""
        async with self._lock:
            if self._token is None or self.clock() >= self._renew_at:
                self._token, lifetime = await self._request()
                self._renew_at = self.clock() + max(0.0, lifetime - self.settings.refresh_margin_seconds)
            return self._token

    def refused(self, token: str) -> None:
        """Forget a token a server refused (unless it was renewed meanwhile)."""
        if token == self._token:
            self._token = None

    async def _request(self) -> tuple[str, float]:
        s = self.settings
        form = {"grant_type": "refresh_token", "refresh_token": self._refresh_token, "client_id": s.client_id}
        if s.client_secret is not None:
            form["client_secret"] = s.client_secret.get_secret_value()
        if s.scope:
            form["scope"] = s.scope
        self.requests += 1
        try:
            async with self.http().post(
                s.token_url,
                data=form,
                headers={"Accept": "application/json"},
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
            ) as response:
                status = response.status
                body: Any = await response.json(content_type=None) if response.content_length != 0 else {}
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise ChannelUnavailable(f"OAuth token endpoint {s.token_url}: {type(err).__name__}") from err
        if not isinstance(body, dict):
            body = {}
        if status >= 500 or status == 429:
            raise ChannelUnavailable(f"OAuth token endpoint {s.token_url} answered {status}")
        if status != 200 or not isinstance(body.get("access_token"), str):
            reason = str(body.get("error") or f"HTTP {status}")[:100]
            raise ChannelAuthError(f"OAuth token endpoint {s.token_url} refused the refresh token: {reason}")
        if isinstance(body.get("refresh_token"), str) and body["refresh_token"]:
            self._refresh_token = body["refresh_token"]
        try:
            lifetime = float(body.get("expires_in") or 3600)
        except (TypeError, ValueError):
            lifetime = 3600.0
        return body["access_token"], lifetime
