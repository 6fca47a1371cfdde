"""The cover page (F2): the `fax_cover` template rendered to one PDF page in the fax font."""

from __future__ import annotations

import re

from fpdf import FPDF

from channels.fax.documents.fonts import FAMILY
from channels.fax.documents.pdf import DocumentError

TITLE_SIZE = 28
TEXT_SIZE = 12
LINE_MM = 6.5
LABEL_MM = 28
_FIELD = re.compile(r"^(\S{1,20}:)[ \t]{2,}(\S.*)$")
"""A `Label:   value` line of a template, set in two columns."""


def draw_cover(pdf: FPDF, text: str) -> None:
    """The rendered template on the current page: its first line as the title, a rule, then the rest.

    The cover is one page: DocumentError if the text does not fit on it.
    """
    title, _, rest = text.strip("\n").partition("\n")
    pdf.set_auto_page_break(auto=False)
    pdf.set_xy(pdf.l_margin, pdf.t_margin)
    pdf.set_font(FAMILY, size=TITLE_SIZE)
    pdf.cell(0, TITLE_SIZE * 0.5, title.strip(), new_x="LMARGIN", new_y="NEXT")
    _rule(pdf)
    pdf.set_font(FAMILY, size=TEXT_SIZE)
    for line in rest.strip("\n").split("\n"):
        field = _FIELD.match(line)
        if field:
            pdf.cell(LABEL_MM, LINE_MM, field.group(1))
            pdf.multi_cell(0, LINE_MM, field.group(2), new_x="LMARGIN", new_y="NEXT")
        elif line.strip():
            pdf.multi_cell(0, LINE_MM, line, new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.ln(LINE_MM * 0.6)
    if pdf.get_y() > pdf.h - pdf.b_margin:
        raise DocumentError("the cover page text does not fit on one page")
    pdf.set_auto_page_break(auto=True, margin=pdf.b_margin)


def _rule(pdf: FPDF) -> None:
    y = pdf.get_y() + 3
    pdf.set_line_width(0.6)
    pdf.line(pdf.l_margin, y, pdf.w - pdf.r_margin, y)
    pdf.set_y(y + 5)
