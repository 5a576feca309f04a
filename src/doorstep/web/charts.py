"""The web app's own charts (overlap matrix, partner scorecard) as inline SVG.

The report's charts (funnel, conversion bars, Kaplan–Meier) come from `measure.charts`, the
same drawings the HTML report uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from doorstep.feedback import Scorecard
from doorstep.measure import format as fmt
from doorstep.measure.charts import EQL_COLOR, conversion_chart, funnel_chart, svg
from doorstep.share.policy import OverlapMatrix

__all__ = ["conversion_chart", "funnel_chart", "matrix_chart", "scorecard_chart"]


def _shade(value: int, most: int) -> str:
    """A green of the cell's share of the largest cell; white for zero."""
    if not value or not most:
        return "#ffffff"
    strength = 0.15 + 0.85 * value / most
    r, g, b = (int(255 - (255 - c) * strength) for c in (15, 123, 95))
    return f"#{r:02x}{g:02x}{b:02x}"


def matrix_chart(matrix: OverlapMatrix, names: Mapping[str, str]) -> str:
    """The overlap matrix as a heat map: per partner, our population × its population."""
    if not matrix:
        return ""
    rows = [(pid, pop) for pid in sorted(matrix.cells) for pop in matrix.ours]
    longest = max(len(f"{names.get(pid, pid)} · {pop}") for pid, pop in rows)
    cell_w, cell_h, head_h = 150, 24, 30
    label_w = max(200, 7 * longest + 16)
    most = max((n for cells in matrix.cells.values() for n in cells.values()), default=0)
    width = label_w + cell_w * len(matrix.theirs) + 10
    height = head_h + cell_h * len(rows) + 10
    parts = []
    for j, theirs in enumerate(matrix.theirs):
        x = label_w + j * cell_w + cell_w / 2
        label = f"their {theirs}".replace("_", " ")
        parts.append(f'<text x="{x:.0f}" y="20" text-anchor="middle">{escape(label)}</text>')
    for i, (pid, population) in enumerate(rows):
        y = head_h + i * cell_h
        name = f"{names.get(pid, pid)} · {population.replace('_', ' ')}"
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(name)}</text>'
        )
        for j, theirs in enumerate(matrix.theirs):
            n = matrix.cells[pid].get((population, theirs), 0)
            x = label_w + j * cell_w
            fill = _shade(n, most)
            ink = "#ffffff" if n and n > most / 2 else "#1d1d1f"
            title = f"{name} × their {theirs.replace('_', ' ')}: {n:,} accounts"
            parts.append(
                f'<g class="cell"><title>{escape(title)}'
                f'</title><rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" '
                f'fill="{fill}" stroke="#e3e3e3"/><text x="{x + cell_w / 2 - 1:.0f}" '
                f'y="{y + 16}" text-anchor="middle" fill="{ink}">{n:,}</text></g>'
            )
    return svg(width, height, "Overlap matrix: our populations × the partner's", parts)


def scorecard_chart(card: Scorecard) -> str:
    """A partner's scorecard as bars of each line's rate, the count and its base beside it."""
    row_h, label_w, plot_w, width = 24, 230, 220, 720
    parts = []
    for i, line in enumerate(card.lines):
        y = 4 + i * row_h
        rate = line.rate
        text = f"{line.count:,} · {fmt.pct(rate)} {line.base_label} ({line.base:,})"
        if line.name == "eql":
            text = fmt.eql_sentence(line.count, card.conversion, card.mql_rate)
        parts.append(
            f'<g class="bar" data-line="{escape(line.name)}"><title>{escape(line.label)}: '
            f"{escape(text)}</title>"
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(line.label)}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{plot_w}" height="{row_h - 8}" '
            f'fill="#f0f0f0"/><rect x="{label_w}" y="{y + 4}" '
            f'width="{(rate or 0.0) * plot_w:.1f}" height="{row_h - 8}" fill="{EQL_COLOR}"/>'
            f'<text class="label" x="{label_w + plot_w + 8}" y="{y + 15}">{escape(text)}</text>'
            "</g>"
        )
    return svg(width + 300, 8 + row_h * len(card.lines), f"Scorecard of {card.partner_name}",
                parts)
