"""A wire-level fake OAuth2 provider on 127.0.0.1: a token endpoint and token introspection.

The token endpoint speaks RFC 6749 section 6 (`grant_type=refresh_token` with the client id
and secret in the form; JSON `access_token`, `token_type`, `expires_in`, optionally a rotated
`refresh_token`; `400 {"error": "invalid_grant"}` for an unknown refresh token). The
introspection endpoint speaks RFC 7662 as dovecot's `oauth2` passdb asks it (POST `token`;
`{"active": true, "username": ...}`). Tokens it has issued stay valid until `revoke`d.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class FakeOAuth:
    """The provider's state: who may refresh, which access tokens are live, what was asked."""

    client_id: str
    client_secret: str
    refresh_token: str
    username: str
    lifetime: int = 3600
    rotate: bool = False
    live: set[str] = field(default_factory=set)
    grants: list[dict[str, str]] = field(default_factory=list)
    introspected: list[str] = field(default_factory=list)
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        """The base URL of the running server."""
        return f"http://127.0.0.1:{self.port}"

    def revoke(self, token: str) -> None:
        """The token no longer works (as after a password change)."""
        self.live.discard(token)

    async def start(self) -> None:
        """Listen on a free port."""
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_post("/introspect", self._introspect)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.grants.append(form)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return web.json_response({"error": "invalid_client"}, status=401)
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != self.refresh_token:
            return web.json_response({"error": "invalid_grant", "error_description": "bad token"}, status=400)
        token = f"access-{next(self._serial)}"
        self.live.add(token)
        body: dict[str, object] = {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime}
        if self.rotate:
            self.refresh_token = f"refresh-{token}"
            body["refresh_token"] = self.refresh_token
        return web.json_response(body)

    async def _introspect(self, request: web.Request) -> web.Response:
        token = str((await request.post()).get("token"))
        self.introspected.append(token)
        if token in self.live:
            return web.json_response({"active": True, "username": self.username})
        return web.json_response({"active": False})
