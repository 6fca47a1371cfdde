"""The HTML shell every UI page is served in: strict CSP, no inline script, data as JSON blocks."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from aiohttp import web

from hub.web.ui.strings import STRINGS

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; frame-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def json_block(element_id: str, data: Any) -> str:
    """Data for the page's scripts, in a non-executable block that cannot close itself early."""
    text = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def page(
    title: str,
    language: str,
    body: str,
    *,
    script: str | None = None,
    data: dict[str, Any] | None = None,
) -> web.Response:
    """A whole page: the body's HTML, the language's strings and the page's module."""
    blocks = json_block("strings", STRINGS[language])
    if data is not None:
        blocks += json_block("page-data", data)
    module = f'<script type="module" src="/static/{script}"></script>' if script else ""
    html = (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)}</title><link rel="icon" href="data:,">'
        '<link rel="stylesheet" href="/static/app.css">'
        f"{module}</head><body>{body}{blocks}</body></html>"
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS)
