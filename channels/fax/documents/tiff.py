"""TIFF for providers and machines that want it: PDF to G4 fax TIFF, received TIFF to PDF."""

from __future__ import annotations

import io
import warnings

import img2pdf
import pypdfium2 as pdfium
from PIL import Image, UnidentifiedImageError

from channels.fax.documents.pdf import DocumentError, read_pdf

FAX_WIDTH = 1728
FAX_DPI = (204, 196)
THRESHOLD = 160


def pdf_to_tiff(pdf: bytes) -> bytes:
    """Every page rendered at 204 dpi, 1728 px wide, 196 dpi tall, 1-bit, in one CCITT G4 TIFF."""
    read_pdf(pdf)
    document = pdfium.PdfDocument(pdf)
    try:
        frames = [_fax_frame(document[index]) for index in range(len(document))]
    finally:
        document.close()
    out = io.BytesIO()
    frames[0].save(
        out, format="TIFF", compression="group4", dpi=FAX_DPI, save_all=True, append_images=frames[1:]
    )
    return out.getvalue()


def _fax_frame(page: pdfium.PdfPage) -> Image.Image:
    width_pt, height_pt = page.get_size()
    bitmap = page.render(scale=FAX_DPI[0] / 72, grayscale=True)
    image = bitmap.to_pil().convert("L")
    height = round(height_pt / 72 * FAX_DPI[1] * FAX_WIDTH / (width_pt / 72 * FAX_DPI[0]))
    image = image.resize((FAX_WIDTH, height), Image.Resampling.LANCZOS)
    fax: Image.Image = image.point(lambda v: 255 if v >= THRESHOLD else 0, mode="1")
    return fax


def tiff_to_pdf(tiff: bytes) -> bytes:
    """A received TIFF as PDF (img2pdf: the G4 data is carried over, not re-encoded)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bytes(img2pdf.convert(tiff, rotation=img2pdf.Rotation.ifvalid))
    except (img2pdf.ImageOpenError, UnidentifiedImageError, ValueError, OSError) as err:
        raise DocumentError(f"not a readable TIFF: {type(err).__name__}: {err}") from err
