"""Charts as inline SVG drawn on the server: nothing to fetch, nothing to run in the browser.

Every chart that shows a count of EQLs writes their conversion rate and the MQL comparison in
the same label (no vanity metric).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from doorstep.feedback import Scorecard
from doorstep.feedback.digest import pct
from doorstep.ingest.contract import RELATIONSHIPS
from doorstep.map import POPULATIONS
from doorstep.measure import Conversion
from doorstep.measure.report import EQL, FunnelRow

EQL_COLOR = "#0f7b5f"
MQL_COLOR = "#6b6b6b"
STEP_COLOR = "#9fb8ad"
OTHER_COLOR = "#2f6db5"


def ratio_text(value: float | None) -> str:
    """A rate ratio against MQLs, e.g. "2.10x MQL"."""
    return "n/a vs MQL" if value is None else f"{value:.2f}x MQL"


def interval_text(low: float | None, high: float | None) -> str:
    """A 95% interval as "12.0%-20.5%"."""
    return "n/a" if low is None or high is None else f"{pct(low)}-{pct(high)}"


def eql_label(count: int, conversion: Conversion | None, mql_rate: float | None) -> str:
    """A count of EQLs with its conversion rate, interval and the MQL comparison beside it."""
    if conversion is None or not conversion.measured:
        return (
            f"{count:,} EQLs · conversion n/a (none measured yet) · MQLs {pct(mql_rate)}"
        )
    return (
        f"{count:,} EQLs · {pct(conversion.rate)} converted "
        f"[{interval_text(conversion.ci_low, conversion.ci_high)}] "
        f"({conversion.opportunities:,} of {conversion.measured:,} measured) · "
        f"{ratio_text(conversion.rate_ratio_vs_mql)} at {pct(mql_rate)}"
    )


def _svg(width: int, height: int, title: str, body: Sequence[str]) -> str:
    return (
        f'<svg class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def funnel_chart(funnel: Sequence[FunnelRow], mql_rate: float | None) -> str:
    """The qualify funnel as bars: leads still in after each gate, then the EQLs."""
    if not funnel:
        return ""
    row_h, label_w, plot_w, width = 30, 90, 360, 1020
    most = max(step.count for step in funnel) or 1
    parts = []
    for i, step in enumerate(funnel):
        y = 5 + i * row_h
        w = step.count / most * plot_w
        if step.step == EQL:
            text = eql_label(step.count, step.conversion, mql_rate)
        else:
            text = f"{step.count:,} leads"
            if i:
                text += f" ({pct(step.share_lost)} lost at this gate)"
        color = EQL_COLOR if step.step == EQL else STEP_COLOR
        parts.append(
            f'<g class="bar" data-step="{escape(step.step)}"><title>{escape(text)}</title>'
            f'<text x="{label_w - 8}" y="{y + 18}" text-anchor="end">{escape(step.step)}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 10}" '
            f'fill="{color}"/><text class="label" x="{label_w + plot_w + 10}" y="{y + 18}">'
            f"{escape(text)}</text></g>"
        )
    return _svg(width, 10 + row_h * len(funnel), "Qualify funnel by gate", parts)


def conversion_chart(
    rows: Sequence[tuple[str, Conversion]], mql_rate: float | None, *, title: str
) -> str:
    """Conversion rates as bars with 95% interval whiskers, and the MQL rate as a dashed line."""
    if not rows:
        return ""
    longest = max(len(name) for name, _ in rows)
    row_h, plot_w = 30, 320
    label_w = min(320, max(100, 7 * longest + 16))
    width = label_w + plot_w + 700
    highs = [c.ci_high for _, c in rows if c.ci_high is not None]
    top = max([*highs, mql_rate or 0.0, 0.05])
    scale = plot_w / min(1.0, top * 1.1)
    height = row_h * len(rows) + 30
    parts = []
    for i, (name, c) in enumerate(rows):
        y = 8 + i * row_h
        color = EQL_COLOR if c.lead_type == EQL else MQL_COLOR if c.lead_type == "mql" else (
            OTHER_COLOR
        )
        if c.lead_type == EQL:
            text = eql_label(c.leads, c, mql_rate)
        else:
            text = (
                f"{c.leads:,} leads · {pct(c.rate)} converted "
                f"[{interval_text(c.ci_low, c.ci_high)}] ({c.opportunities:,} of "
                f"{c.measured:,} measured) · {ratio_text(c.rate_ratio_vs_mql)}"
            )
        parts.append(f'<g class="bar"><title>{escape(name + ": " + text)}</title>')
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 18}" text-anchor="end">{escape(name)}</text>'
        )
        if c.rate is not None:
            parts.append(
                f'<rect x="{label_w}" y="{y + 5}" width="{c.rate * scale:.1f}" '
                f'height="{row_h - 12}" fill="{color}" opacity="0.85"/>'
            )
        if c.ci_low is not None and c.ci_high is not None:
            x1, x2, ym = label_w + c.ci_low * scale, label_w + c.ci_high * scale, y + row_h / 2
            parts.append(
                f'<path d="M{x1:.1f} {ym:.1f}H{x2:.1f}M{x1:.1f} {ym - 5:.1f}V{ym + 5:.1f}'
                f'M{x2:.1f} {ym - 5:.1f}V{ym + 5:.1f}" stroke="#222" fill="none"/>'
            )
        parts.append(
            f'<text class="label" x="{label_w + plot_w + 10}" y="{y + 18}">{escape(text)}'
            "</text></g>"
        )
    if mql_rate is not None:
        x = label_w + mql_rate * scale
        parts.append(
            f'<g><title>MQL rate {pct(mql_rate)}</title><line x1="{x:.1f}" y1="4" '
            f'x2="{x:.1f}" y2="{height - 20}" stroke="{MQL_COLOR}" stroke-dasharray="4 3"/>'
            f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle">MQL {pct(mql_rate)}'
            "</text></g>"
        )
    return _svg(width, height, title, parts)


def _shade(value: int, most: int) -> str:
    """A green of the cell's share of the largest cell; white for zero."""
    if not value or not most:
        return "#ffffff"
    strength = 0.15 + 0.85 * value / most
    r, g, b = (int(255 - (255 - c) * strength) for c in (15, 123, 95))
    return f"#{r:02x}{g:02x}{b:02x}"


def matrix_chart(
    matrix: Mapping[str, Mapping[tuple[str, str], int]], names: Mapping[str, str]
) -> str:
    """The overlap matrix as a heat map: per partner, our population × their relationship."""
    if not matrix:
        return ""
    rows = [(pid, pop) for pid in sorted(matrix) for pop in POPULATIONS]
    longest = max(len(f"{names.get(pid, pid)} · {pop}") for pid, pop in rows)
    cell_w, cell_h, head_h = 130, 24, 30
    label_w = max(200, 7 * longest + 16)
    most = max((n for cells in matrix.values() for n in cells.values()), default=0)
    width = label_w + cell_w * len(RELATIONSHIPS) + 10
    height = head_h + cell_h * len(rows) + 10
    parts = []
    for j, rel in enumerate(RELATIONSHIPS):
        x = label_w + j * cell_w + cell_w / 2
        parts.append(f'<text x="{x:.0f}" y="20" text-anchor="middle">partner {escape(rel)}</text>')
    for i, (pid, population) in enumerate(rows):
        y = head_h + i * cell_h
        name = f"{names.get(pid, pid)} · {population}"
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(name)}</text>'
        )
        for j, rel in enumerate(RELATIONSHIPS):
            n = matrix[pid].get((population, rel), 0)
            x = label_w + j * cell_w
            fill = _shade(n, most)
            ink = "#ffffff" if n and n > most / 2 else "#1d1d1f"
            parts.append(
                f'<g class="cell"><title>{escape(f"{name} × partner {rel}: {n:,} accounts")}'
                f'</title><rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" '
                f'fill="{fill}" stroke="#e3e3e3"/><text x="{x + cell_w / 2 - 1:.0f}" '
                f'y="{y + 16}" text-anchor="middle" fill="{ink}">{n:,}</text></g>'
            )
    return _svg(width, height, "Overlap matrix: our accounts × the partner's relationship", parts)


def scorecard_chart(card: Scorecard) -> str:
    """A partner's scorecard as bars of each line's rate, the count and its base beside it."""
    row_h, label_w, plot_w, width = 24, 230, 220, 720
    parts = []
    for i, line in enumerate(card.lines):
        y = 4 + i * row_h
        rate = line.rate
        text = f"{line.count:,} · {pct(rate)} {line.base_label} ({line.base:,})"
        if line.name == "eql":
            text = eql_label(line.count, card.conversion, card.mql_rate)
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
    return _svg(width + 300, 8 + row_h * len(card.lines), f"Scorecard of {card.partner_name}",
                parts)
