"""Mail HTML made safe to show: nh3 sanitising, `cid:` images pointed at the hub's attachment
URLs, remote images held back until an agent asks; and HTML turned into text (inscriptis)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import nh3
from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig

REMOTE_ATTR = "data-remote-src"
ATTACHMENT_URL = "/api/attachments/by-hash/{sha256}"
"""Where an inline (`cid:`) image is served from, by the SHA-256 of its content."""

_REMOTE_SRC = re.compile(r"(<img\b[^>]*?\s)src(\s*=\s*[\"']?\s*https?:)", re.IGNORECASE)
_HELD_BACK = re.compile(rf"(<img\b[^>]*?\s){REMOTE_ATTR}=", re.IGNORECASE)
_TAGS = nh3.ALLOWED_TAGS | {"center", "font"}
_ATTRIBUTES = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "img": {"src", "alt", "title", "width", "height", REMOTE_ATTR},
    "font": {"color", "face", "size"},
    "td": {"colspan", "rowspan", "align", "valign", "width"},
    "th": {"colspan", "rowspan", "align", "valign", "width"},
    "table": {"align", "width", "border", "cellpadding", "cellspacing"},
}
_TEXT_CONFIG = ParserConfig(css=CSS_PROFILES["strict"], display_links=False, display_images=False)


@dataclass(frozen=True, slots=True)
class SafeHtml:
    """Sanitised HTML and what was held back: remote image URLs (kept in `data-remote-src`)."""

    html: str
    remote_images: tuple[str, ...]
    missing_cids: tuple[str, ...]


def sanitise(html: str, cid_url: Callable[[str], str | None], *, allow_remote: bool = False) -> SafeHtml:
    """Clean `html`; `cid_url` maps a Content-ID to the hub URL of that attachment (None: unknown)."""
    remote: list[str] = []
    missing: list[str] = []
    if not allow_remote:
        html = _REMOTE_SRC.sub(rf"\1{REMOTE_ATTR}\2", html)

    def keep(element: str, attribute: str, value: str) -> str | None:
        if element == "img" and attribute == "src" and value.lower().startswith("cid:"):
            url = cid_url(value[4:].strip().strip("<>"))
            if url is None:
                missing.append(value[4:])
            return url
        if attribute == REMOTE_ATTR:
            if not value.lower().startswith(("http://", "https://")):
                return None
            remote.append(value)
        return value

    cleaned = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        attribute_filter=keep,
        url_schemes={"http", "https", "mailto", "tel", "cid"},
        strip_comments=True,
        link_rel="noopener noreferrer nofollow",
    )
    return SafeHtml(cleaned, tuple(remote), tuple(missing))


def show_remote_images(safe_html: str) -> str:
    """Sanitised HTML with its held-back remote images loaded, for when an agent asks."""
    return _HELD_BACK.sub(r"\1src=", safe_html)


def to_text(html: str) -> str:
    """The readable text of an HTML body, with layout kept as plain lines."""
    text = get_text(html, _TEXT_CONFIG)
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
