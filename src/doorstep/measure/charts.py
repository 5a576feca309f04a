"""Charts as inline SVG drawn on the server, one drawing per chart for every surface.

The HTML report and the web app both draw the funnel, conversion bars and Kaplan–Meier curves
with these functions. Every chart that shows a count of EQLs writes their conversion rate and
the MQL comparison in the same label (no vanity metric).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from doorstep.lifecycle import EQL
from doorstep.measure import format as fmt
from doorstep.measure.model import MIN_AT_RISK, MQL, Conversion, FunnelRow, Report

EQL_COLOR = "#0f7b5f"
MQL_COLOR = "#6b6b6b"
STEP_COLOR = "#9fb8ad"
_COLORS = {EQL: EQL_COLOR, "candidate": "#8e5cb5", MQL: MQL_COLOR, "sql": "#2f6db5",
           "event": "#c7862c"}
_OTHER_COLORS = ("#b5443a", "#3a9fb5", "#7d8f2a", "#b53a8e", "#5a5ab5")


def lead_type_color(lead_type: str, index: int = 0) -> str:
    """The colour of a lead type in every chart."""
    base = lead_type.split(":")[0]
    return _COLORS.get(base, _OTHER_COLORS[index % len(_OTHER_COLORS)])


def svg(width: int, height: int, title: str, body: Sequence[str]) -> str:
    return (
        f'<svg class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
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
            text = fmt.eql_sentence(step.count, step.conversion, mql_rate)
        else:
            text = f"{step.count:,} leads"
            if i:
                text += f" ({fmt.pct(step.share_lost)} lost at this gate)"
        color = EQL_COLOR if step.step == EQL else STEP_COLOR
        parts.append(
            f'<g class="bar" data-step="{escape(step.step)}"><title>{escape(text)}</title>'
            f'<text x="{label_w - 8}" y="{y + 18}" text-anchor="end">{escape(step.step)}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 10}" '
            f'fill="{color}"/><text class="label" x="{label_w + plot_w + 10}" y="{y + 18}">'
            f"{escape(text)}</text></g>"
        )
    return svg(width, 10 + row_h * len(funnel), "Qualify funnel by gate", parts)


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
        color = lead_type_color(c.lead_type, i)
        if c.lead_type == EQL:
            text = fmt.eql_sentence(c.leads, c, mql_rate)
        else:
            text = fmt.group_sentence(f"{c.lead_type}", c).split(": ", 1)[1]
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
            f'<g><title>MQL rate {fmt.pct(mql_rate)}</title><line x1="{x:.1f}" y1="4" '
            f'x2="{x:.1f}" y2="{height - 20}" stroke="{MQL_COLOR}" stroke-dasharray="4 3"/>'
            f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle">MQL {fmt.pct(mql_rate)}'
            "</text></g>"
        )
    return svg(width, height, title, parts)


def survival_chart(report: Report) -> str:
    """Kaplan–Meier curves: the share of leads with an opportunity by each day of the window."""
    curves = [c for t, c in report.time_to_opportunity.items() if ":" not in t]
    if not curves:
        return ""
    width, left, bottom, right, legend_row = 720, 50, 40, 20, 20
    plot_h = 260
    plot_w = width - left - right
    height = 20 + plot_h + bottom + legend_row * len(curves) + 10
    top = max(max(c.ci_high, default=0.0) for c in curves)
    top = max(0.05, min(1.0, math.ceil(top * 20) / 20))  # up to the next 5%
    window = report.window_days

    def xy(day: float, value: float) -> tuple[float, float]:
        return left + day / window * plot_w, 20 + plot_h * (1 - value / top)

    parts = [
        f'<svg role="img" width="{width + 300}" height="{height}" '
        f'viewBox="0 0 {width + 300} {height}">'
        "<title>Time to opportunity (Kaplan–Meier)</title>"
    ]
    for k in range(5):
        value = top * k / 4
        _, y = xy(0, value)
        parts.append(
            f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{fmt.pct(value)}</text>'
        )
    for k in range(7):
        day = window * k / 6
        x, _ = xy(day, 0)
        parts.append(
            f'<text x="{x:.1f}" y="{20 + plot_h + 18}" text-anchor="middle">{day:.0f}</text>'
        )
    parts.append(
        f'<line class="axis" x1="{left}" y1="{20 + plot_h}" x2="{left + plot_w}" '
        f'y2="{20 + plot_h}"/><text x="{left + plot_w / 2}" y="{20 + plot_h + 34}" '
        f'text-anchor="middle">days after the lead</text>'
    )
    mql_curve = report.time_to_opportunity.get(MQL)
    mql_window = mql_curve.at_window if mql_curve else None
    mql_at = mql_window[0] if mql_window else None
    for i, curve in enumerate(curves):
        color = lead_type_color(curve.lead_type, i)
        points = []
        previous = 0.0
        for day, value in zip(curve.days, curve.conversion, strict=True):
            points.append(xy(day, previous))
            points.append(xy(day, value))
            previous = value
        path = "M" + "L".join(f"{x:.1f} {y:.1f}" for x, y in points)
        at = curve.at_window
        legend = f"{curve.lead_type} · {curve.events} opportunities among {curve.subjects} leads "
        if at is not None:
            legend += (
                f"followed · {fmt.pct(at[0])} by day {window} [{fmt.interval(at[1], at[2])}] · "
                f"{fmt.ratio_vs_mql(at[0] / mql_at if mql_at else None)}"
            )
        elif curve.last_day is None:
            legend += f"followed · too few to draw (fewer than {MIN_AT_RISK} followed)"
        else:
            legend += (
                f"followed · stops at day {curve.last_day}: fewer than {MIN_AT_RISK} leads "
                "followed beyond it"
            )
        y = 20 + plot_h + bottom + 8 + i * legend_row
        parts.append(
            f"<g><title>{escape(legend)}</title>"
            f'<path d="{path}" stroke="{color}" stroke-width="2" fill="none"/>'
            f'<rect x="{left}" y="{y - 9}" width="12" height="12" fill="{color}"/>'
            f'<text x="{left + 18}" y="{y + 1}">{escape(legend)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
