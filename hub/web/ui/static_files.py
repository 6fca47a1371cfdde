"""The UI's scripts and style sheet, read once from the package and served with long caching."""

from __future__ import annotations

import asyncio
from importlib import resources

from aiohttp import web

from hub.errors import NotFound
from hub.web.routing import Access, Ctx, RouteTable

routes = RouteTable("ui")

TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
_cache: dict[str, bytes] = {}


def _read(name: str) -> bytes | None:
    source = resources.files("hub.web.ui").joinpath("static", name)
    return source.read_bytes() if source.is_file() else None


@routes.get(r"/static/{file:[a-z0-9-]{1,40}\.(?:js|css|svg)}", Access.PUBLIC)
async def static_file(ctx: Ctx) -> web.StreamResponse:
    """A script, style sheet or icon of the UI."""
    name = ctx.request.match_info["file"]
    data = _cache.get(name)
    if data is None:
        data = await asyncio.to_thread(_read, name)
        if data is None:
            raise NotFound(f"no such file: {name}")
        _cache[name] = data
    suffix = name[name.rindex(".") :]
    return web.Response(
        body=data,
        content_type=TYPES[suffix],
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )
