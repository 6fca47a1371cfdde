"""Downloading attachments, always as downloads, never rendered by the browser."""

from __future__ import annotations

import asyncio
import logging
import re
from urllib.parse import quote

from aiohttp import web

from hub import attachments
from hub.errors import NotFound
from hub.models import Attachment, Role
from hub.web.routing import Ctx, RouteTable

log = logging.getLogger(__name__)

routes = RouteTable("attachments")

MIME_PART = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
SAFE_CONTENT_TYPE = re.compile(rf"^{MIME_PART}/{MIME_PART}$")
FALLBACK_TYPE = "application/octet-stream"
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the exact name in RFC 5987 form."""
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", filename).strip() or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@routes.get("/api/attachments/{id}", Role.AGENT)
async def download_attachment(ctx: Ctx) -> web.StreamResponse:
    """The attachment's bytes, streamed, with its content type, as a download."""
    return await _file(ctx, await attachments.one(ctx.services.db, ctx.path_id()))


@routes.get("/api/attachments/by-hash/{sha256}", Role.AGENT)
async def download_by_hash(ctx: Ctx) -> web.StreamResponse:
    """An attachment by the SHA-256 of its content: where inline (`cid:`) mail images point."""
    sha256 = ctx.request.match_info["sha256"]
    if not SHA256.match(sha256):
        raise NotFound("not a SHA-256 content hash")
    return await _file(ctx, await attachments.by_hash(ctx.services.db, sha256))


async def _file(ctx: Ctx, attachment: Attachment) -> web.StreamResponse:
    path = ctx.services.blobs.path(attachment.sha256)
    if not await asyncio.to_thread(path.is_file):
        log.error("attachment %s: its blob %s is missing", attachment.id, attachment.sha256)
        raise NotFound(f"the content of attachment {attachment.id} is missing")
    content_type = attachment.content_type.split(";")[0].strip()
    if not SAFE_CONTENT_TYPE.match(content_type):
        content_type = FALLBACK_TYPE
    return web.FileResponse(
        path,
        headers={
            "Content-Type": content_type,
            "Content-Disposition": content_disposition(attachment.filename),
            "X-Content-Type-Options": "nosniff",
        },
    )
