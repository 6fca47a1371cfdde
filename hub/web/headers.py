"""Security headers on every answer, including errors, webhooks and streamed files."""

from __future__ import annotations

from aiohttp import web

from hub.web.keys import SERVICES

API_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}
HSTS = "max-age=31536000"


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Set the headers a handler did not set itself (on_response_prepare)."""
    for name, value in API_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.app[SERVICES].config.web.secure_cookies:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
