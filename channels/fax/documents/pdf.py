"""PDF building blocks: text to pages, images to pages, merging, counting (blocking; run in threads)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence

import img2pdf
from fpdf import FPDF
from PIL import Image, UnidentifiedImageError
from pypdf import PdfReader, PdfWriter
from pypdf.errors import PdfReadError

from channels.fax.documents.fonts import FAMILY, FontSpec
from hub.errors import DeliveryRejected, HubError

PAPER = {"a4": "A4", "letter": "Letter"}
BODY_SIZE = 11
MARGIN_MM = 18


class DocumentError(HubError):
    """A document could not be read or written (corrupt, empty, wrong type)."""


class UnsupportedAttachment(DeliveryRejected):
    """An attachment a fax cannot carry; refused before anything is sent."""


def new_pdf(font: FontSpec, paper: str) -> FPDF:
    """An empty portrait document with the fax font embedded."""
    pdf = FPDF(orientation="portrait", unit="mm", format=PAPER[paper])
    pdf.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
    pdf.set_auto_page_break(auto=True, margin=MARGIN_MM)
    pdf.set_creator("omnihub")
    font.install(pdf)
    return pdf


def text_pdf(text: str, font: FontSpec, paper: str = "a4") -> bytes:
    """Plain text as pages of the fax font."""
    pdf = new_pdf(font, paper)
    try:
        write_text(pdf, text)
        return bytes(pdf.output())
    finally:
        close_fonts(pdf)


def close_fonts(pdf: FPDF) -> None:
    """Close the font files a document read (fontTools keeps them open to read lazily)."""
    for embedded in pdf.fonts.values():
        ttfont = getattr(embedded, "ttfont", None)
        if ttfont is not None:
            ttfont.close()


def write_text(pdf: FPDF, text: str) -> None:
    """Plain text from the top of a new page, on as many pages as it takes."""
    pdf.add_page()
    pdf.set_font(FAMILY, size=BODY_SIZE)
    pdf.multi_cell(0, BODY_SIZE * 0.55, text.replace("\t", "    ") or " ")


def image_pdf(data: bytes) -> bytes:
    """An image (PNG, JPEG, GIF, TIFF, one page per frame) as PDF pages, losslessly where possible."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bytes(img2pdf.convert(data, rotation=img2pdf.Rotation.ifvalid))
    except (img2pdf.ImageOpenError, img2pdf.AlphaChannelError, ValueError, OSError):
        pass
    try:
        with warnings.catch_warnings(), Image.open(io.BytesIO(data)) as image:
            warnings.simplefilter("ignore")
            frames = []
            for index in range(getattr(image, "n_frames", 1)):
                image.seek(index)
                frames.append(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise DocumentError(f"not a readable image: {err}") from err
    out = io.BytesIO()
    frames[0].save(out, format="PDF", save_all=True, append_images=frames[1:], resolution=200)
    return out.getvalue()


def read_pdf(data: bytes) -> PdfReader:
    """A parsed PDF with at least one page; DocumentError if it is corrupt or empty."""
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        pages = len(reader.pages)
    except (PdfReadError, ValueError, OSError, KeyError, TypeError) as err:
        raise DocumentError(f"corrupt PDF: {type(err).__name__}: {err}") from err
    if pages == 0:
        raise DocumentError("the PDF has no pages")
    return reader


def page_count(data: bytes) -> int:
    """How many pages a PDF has; DocumentError if it is corrupt or has none."""
    return len(read_pdf(data).pages)


def merge(parts: Sequence[bytes]) -> bytes:
    """One PDF of all the parts' pages, in order."""
    writer = PdfWriter()
    for part in parts:
        writer.append(read_pdf(part))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
