"""What the fake providers share: a small aiohttp server on 127.0.0.1 and expiring media links."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class MediaLinks:
    """Documents behind links that work once, and only for `ttl` seconds, like providers' signed URLs."""

    ttl: float = 60.0
    items: dict[str, tuple[bytes, str, float]] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)

    def add(self, data: bytes, content_type: str) -> str:
        """A new token for a document."""
        token = secrets.token_urlsafe(12)
        self.items[token] = (data, content_type, time.monotonic() + self.ttl)
        return token

    async def serve(self, request: web.Request) -> web.Response:
        """`GET /media/{token}`: the document once; 403 once used or expired (as S3 answers)."""
        token = request.match_info["token"]
        item = self.items.pop(token, None)
        self.fetched.append(token)
        if item is None or item[2] < time.monotonic():
            return web.Response(status=403, text="<Error><Code>AccessDenied</Code></Error>")
        return web.Response(body=item[0], content_type=item[1])


class FakeServer:
    """An aiohttp application served on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        self.app = web.Application(client_max_size=100 * 1024 * 1024)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen."""
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
