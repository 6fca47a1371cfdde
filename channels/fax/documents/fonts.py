"""The font fax pages are written in: an embedded TrueType face that covers Chinese."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF

from hub.errors import ConfigError

DEFAULT_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
FAMILY = "faxfont"


@dataclass(frozen=True, slots=True)
class FontSpec:
    """A TTF/TTC file and, for a collection, which face of it (WenQuanYi Micro Hei: 0)."""

    path: Path = DEFAULT_FONT
    collection_index: int = 0

    def check(self) -> None:
        """Raise ConfigError unless the font file is there."""
        if not self.path.is_file():
            raise ConfigError(
                f"fax font {self.path} not found: install fonts-wqy-microhei or set font_path "
                f"to a TrueType font that covers the languages you send"
            )

    def install(self, pdf: FPDF) -> None:
        """Embed the font in a document under `FAMILY`."""
        self.check()
        pdf.add_font(FAMILY, fname=str(self.path), collection_font_number=self.collection_index)
