"""Fax documents for real: cover text extractable in both languages, cover not blank, page counts right."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from fpdf import FPDF
from PIL import Image
from pypdf import PdfReader

from channels.fax.documents import (
    DocumentError,
    FontSpec,
    Part,
    UnsupportedAttachment,
    build_document,
    page_count,
    pdf_to_tiff,
    tiff_to_pdf,
)
from channels.fax.documents.preview import page_png
from hub.errors import ConfigError
from hub.templates import Templates

COVER: dict[str, dict[str, Any]] = {
    "en": {
        "sender": {
            "name": "Mira Okafor",
            "company": "Brightwater",
            "phone": "+44 113 496 0321",
            "fax": "+44 113 496 0388",
            "email": "mira@example.com",
        },
        "recipient": {"name": "Priya Ramanathan", "company": None, "phone": None, "fax": "+44 161 496 0556"},
        "subject": "Signed return authorisation",
        "date": datetime(2026, 11, 23, 10, 30, tzinfo=UTC),
        "confidential": True,
    },
    "zh": {
        "sender": {
            "name": "王丽娟",
            "company": "明水供应",
            "phone": "+86 21 6235 0321",
            "fax": "+86 21 6235 0388",
            "email": None,
        },
        "recipient": {"name": "李国栋", "company": "国栋五金行", "phone": None, "fax": "+86 10 8529 0556"},
        "subject": "已签署的退货授权书",
        "date": datetime(2026, 11, 23, 10, 30, tzinfo=UTC),
        "confidential": False,
    },
}


def _pdf(pages: int) -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=14)
    for n in range(pages):
        pdf.add_page()
        pdf.cell(0, 10, f"attached page {n + 1}")
    return bytes(pdf.output())


def _png() -> bytes:
    image = Image.new("RGBA", (400, 300), (255, 255, 255, 0))
    for x in range(50, 350):
        for y in range(100, 120):
            image.putpixel((x, y), (0, 0, 0, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _dark_pixels(pdf: bytes, index: int) -> int:
    document = pdfium.PdfDocument(pdf)
    try:
        image = document[index].render(scale=1).to_pil().convert("L")
    finally:
        document.close()
    return sum(image.histogram()[:128])


async def _build(lang: str, text: str, parts: list[Part], **kw: Any) -> Any:
    return await build_document(
        text,
        parts,
        COVER[lang],
        templates=Templates(),
        lang=lang,
        tz="Europe/London",
        font=kw.pop("font", FontSpec()),
        **kw,
    )


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_cover_text_is_extractable_and_counts_every_page(lang: str) -> None:
    doc = await _build(
        lang,
        "Please sign and return the form.\n请签字后寄回。",
        [
            Part("form.pdf", "application/pdf", _pdf(3)),
            Part("photo.png", "image/png", _png()),
        ],
    )
    reader = PdfReader(io.BytesIO(doc.pdf))
    assert len(reader.pages) == doc.pages == 1 + 1 + 3 + 1
    cover = reader.pages[0].extract_text()
    sample = COVER[lang]
    for value in (
        sample["sender"]["name"],
        sample["recipient"]["name"],
        sample["subject"],
        sample["recipient"]["fax"],
        sample["sender"]["phone"],
    ):
        assert value in cover
    printed = re.search(r"Pages:\s*(\d+)" if lang == "en" else r"共(\d+)页", cover)
    assert printed is not None and int(printed.group(1)) == len(reader.pages)
    assert ("CONFIDENTIAL" in cover) is (lang == "en")
    assert "attached page 3" in reader.pages[4].extract_text()


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_rendered_cover_is_not_blank(lang: str) -> None:
    doc = await _build(lang, "", [])
    assert doc.pages == 1
    assert _dark_pixels(doc.pdf, 0) > 2000


async def test_chinese_glyphs_render_from_the_embedded_font() -> None:
    latin = await _build("zh", "", [])
    blank_subject = dict(COVER["zh"], subject="", sender=dict(COVER["zh"]["sender"], name="X"))
    fewer = await build_document(
        "", [], blank_subject, templates=Templates(), lang="zh", tz="UTC", font=FontSpec()
    )
    assert _dark_pixels(latin.pdf, 0) > _dark_pixels(fewer.pdf, 0) + 200


async def test_unsupported_attachment_is_refused_before_rendering() -> None:
    with pytest.raises(UnsupportedAttachment, match=r"setup\.exe"):
        await _build("en", "hi", [Part("setup.exe", "application/octet-stream", b"MZ\x90\x00" * 50)])
    with pytest.raises(UnsupportedAttachment, match=r"broken\.pdf"):
        await _build("en", "hi", [Part("broken.pdf", "application/pdf", b"%PDF-1.4\n garbage")])


async def test_missing_font_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fonts-wqy-microhei"):
        await _build("en", "hi", [], font=FontSpec(tmp_path / "none.ttc"))


def test_g4_tiff_is_fax_sized_and_converts_back() -> None:
    pdf = _pdf(2)
    tiff = pdf_to_tiff(pdf)
    with Image.open(io.BytesIO(tiff)) as image:
        assert image.n_frames == 2
        assert image.width == 1728
        assert image.info["compression"] == "group4"
        assert tuple(round(v) for v in image.info["dpi"]) == (204, 196)
        assert image.mode == "1"
        assert abs(image.height - 297 / 210 * 1728 * 196 / 204) <= 2
    back = tiff_to_pdf(tiff)
    assert page_count(back) == 2
    assert _dark_pixels(back, 0) > 100


def test_page_previews_draw_existing_pages_and_refuse_others() -> None:
    two = _pdf(2)
    with Image.open(io.BytesIO(page_png(two, 2, width=400))) as image:
        assert image.width == 400
    for page in (0, 3):
        with pytest.raises(DocumentError, match="has 2 pages"):
            page_png(two, page)
    with pytest.raises(DocumentError):
        page_png(b"%PDF-1.7\n%%EOF", 1)
    with pytest.raises(DocumentError):
        page_png(b"not a document at all", 1)


def test_corrupt_and_empty_inputs_are_document_errors() -> None:
    with pytest.raises(DocumentError):
        page_count(b"%PDF-1.7\n%%EOF")
    with pytest.raises(DocumentError):
        tiff_to_pdf(b"II*\x00not really")
