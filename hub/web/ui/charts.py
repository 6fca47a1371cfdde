"""Small bar charts as server-rendered SVG: no script, escaped labels."""

from __future__ import annotations

from html import escape

BAR_HEIGHT = 22
LABEL_WIDTH = 130
WIDTH = 420


def bar_chart(title: str, values: list[tuple[str, int]]) -> str:
    """A horizontal bar chart of labelled counts."""
    top = max((v for _, v in values), default=0) or 1
    height = BAR_HEIGHT * max(len(values), 1) + 8
    bars: list[str] = []
    for index, (label, value) in enumerate(values):
        y = 4 + index * BAR_HEIGHT
        length = round((WIDTH - LABEL_WIDTH - 50) * value / top)
        bars.append(
            f'<text x="0" y="{y + 15}" class="chart-label">{escape(label)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{length}" height="{BAR_HEIGHT - 6}" '
            'class="chart-bar"/>'
            f'<text x="{LABEL_WIDTH + length + 6}" y="{y + 15}" class="chart-value">{value}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">'
        f"<title>{escape(title)}</title>{''.join(bars)}</svg>"
    )
