"""Fax documents: the reply rendered to PDF, the cover page (F2), merging, page counts and TIFF."""

from channels.fax.documents.assemble import FaxDocument, Part, build_document, check_parts
from channels.fax.documents.fonts import FontSpec
from channels.fax.documents.pdf import DocumentError, UnsupportedAttachment, page_count
from channels.fax.documents.tiff import pdf_to_tiff, tiff_to_pdf

__all__ = [
    "DocumentError",
    "FaxDocument",
    "FontSpec",
    "Part",
    "UnsupportedAttachment",
    "build_document",
    "check_parts",
    "page_count",
    "pdf_to_tiff",
    "tiff_to_pdf",
]
