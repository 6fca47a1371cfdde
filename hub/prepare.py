"""Work on inbound messages that needs no database: fitting values, storing blobs, search terms.

`prepare_batch` is a plain function of picklable arguments, so the ingest pipeline can run
it in a thread or a worker process while the event loop commits the previous batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from hub.errors import PayloadTooLarge
from hub.models import InboundMessage
from hub.pickling import quick_pickle
from hub.store.blobs import BlobBatch, BlobStore
from hub.store.search import index_terms

MAX_EXTERNAL_ID = 255
MAX_SUBJECT = 998
MAX_NAME = 255
MAX_ADDRESS = 320
MAX_REF = 998
MAX_LANGUAGE = 16


@quick_pickle
@dataclass(frozen=True, slots=True)
class IngestLimits:
    """Size limits and the threading window for conversational channels."""

    max_attachment_bytes: int = 25 * 1024 * 1024
    max_raw_bytes: int = 35 * 1024 * 1024
    thread_window: timedelta = timedelta(hours=24)


@quick_pickle
@dataclass(frozen=True, slots=True)
class Prepared:
    """A message ready to store: its payloads are blobs now, so it no longer carries them."""

    message: InboundMessage
    raw_sha256: str | None
    attachments: tuple[dict[str, Any], ...]
    notes: tuple[str, ...]
    terms: str
    raw: bytes | None = None
    """The raw bytes, when they are stored with the message (`message_raw`) instead of as a blob."""


def prepare_batch(blob_root: Path, limits: IngestLimits, batch: list[InboundMessage]) -> list[Prepared]:
    """Prepare every message of a batch (blocking: run it in a thread or a worker process); its
    blobs are made durable together before this returns."""
    blobs = BlobStore(blob_root).batch()
    try:
        prepared = [prepare(blobs, limits, message) for message in batch]
        blobs.commit()
    finally:
        blobs.abandon()
    return prepared


def prepare(
    blobs: BlobBatch, limits: IngestLimits, message: InboundMessage, *, raw_with_row: bool = False
) -> Prepared:
    """Fit one message, write its raw payload and attachments, compute its search terms;
    `raw_with_row` keeps the raw payload for the message's own row instead of as a blob."""
    message, notes = _fitted(message)
    raw_sha = None
    raw = None
    if message.raw is not None:
        try:
            if raw_with_row:
                raw_sha, raw = _checked_hash(message.raw, limits.max_raw_bytes), message.raw
            else:
                raw_sha = blobs.put(message.raw, limit=limits.max_raw_bytes, what="the raw message")
        except PayloadTooLarge as err:
            notes.append(f"raw payload not kept: {err}")
    stored: list[dict[str, Any]] = []
    for att in message.attachments:
        try:
            sha = blobs.put(att.data, limit=limits.max_attachment_bytes, what=f"attachment {att.filename!r}")
        except PayloadTooLarge as err:
            notes.append(f"attachment not stored: {err}")
            continue
        stored.append(
            {
                "filename": att.filename[:255],
                "content_type": att.content_type[:255],
                "size": len(att.data),
                "sha256": sha,
            }
        )
    terms = index_terms(message.subject, message.text, message.sender.address, message.sender_name)
    if message.raw is not None or message.attachments:
        message = dataclasses.replace(message, raw=None, attachments=())
    return Prepared(message, raw_sha, tuple(stored), tuple(notes), terms, raw)


def _checked_hash(raw: bytes, limit: int) -> str:
    if len(raw) > limit:
        raise PayloadTooLarge(f"the raw message is {len(raw)} bytes, over the limit of {limit}")
    return hashlib.sha256(raw).hexdigest()


def _clean(value: str | None, limit: int) -> str | None:
    return value.replace("\x00", "")[:limit] if value is not None else None


def _fitted(message: InboundMessage) -> tuple[InboundMessage, list[str]]:
    """Fit a message to what both databases store: no NUL characters, bounded lengths.

    Raises ValueError when the sender cannot be stored at all (the message is quarantined).
    """
    notes: list[str] = []
    if len(message.sender.address) > MAX_ADDRESS or "\x00" in message.sender.address:
        raise ValueError(f"sender address is not storable ({len(message.sender.address)} characters)")
    text = message.text.replace("\x00", "")
    if text != message.text:
        notes.append("NUL characters removed from the text")
    external_id = message.external_id.replace("\x00", "")
    if len(external_id) > MAX_EXTERNAL_ID:
        external_id = "sha256:" + hashlib.sha256(external_id.encode()).hexdigest()
        notes.append(f"external id over {MAX_EXTERNAL_ID} characters replaced by its SHA-256")
    subject = _clean(message.subject, MAX_SUBJECT)
    if message.subject is not None and subject != message.subject:
        notes.append(f"subject cut to {MAX_SUBJECT} characters")
    reply_refs = tuple(r for r in message.reply_refs if len(r) <= MAX_REF and "\x00" not in r)
    own_refs = tuple(r for r in message.own_refs if len(r) <= MAX_REF and "\x00" not in r)
    if len(reply_refs) + len(own_refs) != len(message.reply_refs) + len(message.own_refs):
        notes.append(f"references over {MAX_REF} characters dropped")
    attachments = tuple(
        dataclasses.replace(
            a,
            filename=_clean(a.filename, 255) or "attachment",
            content_type=_clean(a.content_type, 255) or "application/octet-stream",
        )
        for a in message.attachments
    )
    changes: dict[str, Any] = {
        "text": text,
        "external_id": external_id,
        "subject": subject,
        "sender_name": _clean(message.sender_name, MAX_NAME),
        "html": _clean(message.html, len(message.html or "")),
        "language": _clean(message.language, MAX_LANGUAGE),
        "reply_refs": reply_refs,
        "own_refs": own_refs,
        "attachments": attachments,
    }
    if all(getattr(message, name) == value for name, value in changes.items()):
        return message, notes
    return dataclasses.replace(message, **changes), notes
