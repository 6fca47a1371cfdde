"""A reply as a fax: body and attachments to one PDF, with the cover page counted in (F2)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from channels.fax.documents.cover import draw_cover
from channels.fax.documents.fonts import FontSpec
from channels.fax.documents.pdf import (
    DocumentError,
    UnsupportedAttachment,
    close_fonts,
    image_pdf,
    merge,
    new_pdf,
    page_count,
    read_pdf,
    text_pdf,
    write_text,
)
from hub.templates import Templates

COVER_TEMPLATE = "fax_cover"
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image"),
    (b"\xff\xd8\xff", "image"),
    (b"GIF87a", "image"),
    (b"GIF89a", "image"),
    (b"II*\x00", "image"),
    (b"MM\x00*", "image"),
)


@dataclass(frozen=True, slots=True)
class Part:
    """One attachment to fax: its name, declared type and bytes."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class FaxDocument:
    """The document to send: the PDF, its page count (the cover included) and the cover's text."""

    pdf: bytes
    pages: int
    cover_text: str


def kind_of(part: Part) -> str:
    """`pdf`, `image` or `text`; UnsupportedAttachment for anything a fax cannot carry."""
    if b"%PDF-" in part.data[:1024]:
        return "pdf"
    for magic, kind in _MAGIC:
        if part.data.startswith(magic):
            return kind
    if part.content_type.split(";")[0].strip().lower() == "text/plain":
        try:
            part.data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return "text"
    raise UnsupportedAttachment(
        f"{part.filename!r} ({part.content_type}) cannot be faxed: "
        "send PDF, PNG, JPEG, GIF, TIFF or plain text"
    )


def check_parts(parts: Sequence[Part]) -> None:
    """Refuse unsupported attachments before anything is rendered or sent."""
    for part in parts:
        kind_of(part)


def attachments_pdf(parts: Sequence[Part], font: FontSpec, paper: str) -> bytes | None:
    """The attachments as one PDF, or None when there are none."""
    pieces: list[bytes] = []
    for part in parts:
        kind = kind_of(part)
        try:
            if kind == "pdf":
                read_pdf(part.data)
                pieces.append(part.data)
            elif kind == "image":
                pieces.append(image_pdf(part.data))
            else:
                pieces.append(text_pdf(part.data.decode("utf-8"), font, paper))
        except DocumentError as err:
            raise UnsupportedAttachment(f"{part.filename!r} cannot be faxed: {err}") from err
    return merge(pieces) if pieces else None


def build_sync(
    text: str,
    parts: Sequence[Part],
    cover: Mapping[str, Any],
    *,
    templates: Templates,
    lang: str,
    tz: ZoneInfo | str,
    font: FontSpec,
    paper: str = "a4",
) -> FaxDocument:
    """Render, merge and count (blocking): the cover says the total, which counts the cover itself.

    The cover and the reply's text share one document (the cover page is drawn last, once the
    total is known), so the font is embedded once.
    """
    check_parts(parts)
    pdf = new_pdf(font, paper)
    try:
        pdf.add_page()
        if text.strip():
            write_text(pdf, text)
        own_pages = pdf.pages_count
        attached = attachments_pdf(parts, font, paper)
        total = own_pages + (page_count(attached) if attached is not None else 0)
        fields = {"fax": {**cover, "pages": total}}
        rendered = templates.render("fax", COVER_TEMPLATE, lang, "txt", fields, tz=tz)
        pdf.page = 1
        draw_cover(pdf, rendered.text)
        pdf.page = own_pages
        written = bytes(pdf.output())
    finally:
        close_fonts(pdf)
    document = merge([written, attached]) if attached is not None else written
    pages = page_count(document)
    if pages != total:
        raise DocumentError(f"the cover says {total} pages but the document has {pages}")
    return FaxDocument(document, pages, rendered.text)


async def build_document(
    text: str,
    parts: Sequence[Part],
    cover: Mapping[str, Any],
    *,
    templates: Templates,
    lang: str,
    tz: ZoneInfo | str,
    font: FontSpec,
    paper: str = "a4",
) -> FaxDocument:
    """`build_sync` off the event loop."""
    return await asyncio.to_thread(
        build_sync, text, parts, cover, templates=templates, lang=lang, tz=tz, font=font, paper=paper
    )
