"""A page of a fax document as a PNG, for the timeline's previews (blocking; run in a thread)."""

from __future__ import annotations

import io

import pypdfium2 as pdfium

from channels.fax.documents.pdf import DocumentError
from channels.fax.documents.tiff import tiff_to_pdf

PREVIEW_WIDTH = 850


def page_png(document: bytes, page: int, width: int = PREVIEW_WIDTH) -> bytes:
    """Page `page` (from 1) of a PDF or TIFF, `width` pixels wide; DocumentError if there is no such page.

    Runs once per preview image shown, so the document is opened once, by pdfium, which counts
    the pages as well as it draws them.
    """
    if document[:4] in (b"II*\x00", b"MM\x00*"):
        document = tiff_to_pdf(document)
    try:
        pdf = pdfium.PdfDocument(document)
    except pdfium.PdfiumError as err:
        raise DocumentError(f"corrupt PDF: {err}") from err
    try:
        pages = len(pdf)
        if not 1 <= page <= pages:
            raise DocumentError(f"the document has {pages} pages, not a page {page}")
        sheet = pdf[page - 1]
        image = sheet.render(scale=width / sheet.get_width(), grayscale=True).to_pil()
    except pdfium.PdfiumError as err:
        raise DocumentError(f"page {page} cannot be drawn: {err}") from err
    finally:
        pdf.close()
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
