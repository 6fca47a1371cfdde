"""Files an agent uploads for a reply: stored as blobs, attached when the reply is queued."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.errors import NotFound
from hub.etiquette import DraftAttachment
from hub.store import BlobStore, Database, schema

MAX_UPLOAD_BYTES = 25 * 1024 * 1024
"""The largest file accepted at all; each channel's own limits (E7) are checked on the draft."""
HEAD_BYTES = 512
MAX_FILENAME = 255


@dataclass(frozen=True, slots=True)
class Upload:
    """A stored file waiting to go out with a reply."""

    id: int
    filename: str
    content_type: str
    size: int
    sha256: str


def clean_filename(name: str) -> str:
    """A file name without folders or control characters, at most 255 characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip().lstrip(".")
    return base[-MAX_FILENAME:] or "attachment"


async def store(
    db: Database,
    blobs: BlobStore,
    agent_id: int,
    filename: str,
    content_type: str,
    data: bytes,
    now: datetime,
) -> Upload:
    """Keep an uploaded file; raise PayloadTooLarge over MAX_UPLOAD_BYTES."""
    sha256 = await blobs.put(data, limit=MAX_UPLOAD_BYTES, what="the file")
    name = clean_filename(filename)
    kind = content_type[:255] or "application/octet-stream"
    row = {
        "agent_id": agent_id,
        "filename": name,
        "content_type": kind,
        "size": len(data),
        "sha256": sha256,
        "created_at": now,
    }
    async with db.write() as conn:
        upload_id = (
            await conn.execute(insert(schema.uploads).returning(schema.uploads.c.id), row)
        ).scalar_one()
    return Upload(upload_id, name, kind, len(data), sha256)


async def owned(db: Database, agent_id: int, ids: Sequence[int]) -> list[Upload]:
    """The agent's own uploads with these ids, in the order given; NotFound for any other id."""
    if not ids:
        return []
    u = schema.uploads
    async with db.read() as conn:
        rows = (
            (await conn.execute(select(u).where(u.c.id.in_(ids), u.c.agent_id == agent_id))).mappings().all()
        )
    found = {r["id"]: Upload(r["id"], r["filename"], r["content_type"], r["size"], r["sha256"]) for r in rows}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"no upload {missing[0]} of yours")
    return [found[i] for i in dict.fromkeys(ids)]


async def for_check(blobs: BlobStore, files: Sequence[Upload]) -> list[DraftAttachment]:
    """The files as the etiquette check sees them, with their first bytes."""
    heads = await asyncio.to_thread(lambda: [_head(blobs, f.sha256) for f in files])
    return [
        DraftAttachment(f.filename, f.content_type, f.size, head)
        for f, head in zip(files, heads, strict=True)
    ]


async def attach(conn: AsyncConnection, message_id: int, files: Sequence[Upload]) -> None:
    """Record the files as the message's attachments, in the caller's transaction."""
    if files:
        await conn.execute(
            insert(schema.attachments),
            [
                {
                    "message_id": message_id,
                    "filename": f.filename,
                    "content_type": f.content_type,
                    "size": f.size,
                    "sha256": f.sha256,
                }
                for f in files
            ],
        )


def _head(blobs: BlobStore, sha256: str) -> bytes:
    with blobs.path(sha256).open("rb") as handle:
        return handle.read(HEAD_BYTES)
