"""The measurement report as one self-contained HTML file: inline CSS and SVG, nothing fetched.

Every EQL count on the page stands beside its conversion rate and the MQL comparison.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path

from doorstep.measure.report import (
    ALL_SEGMENTS,
    EQL,
    MQL,
    SEGMENTS,
    Conversion,
    FairComparison,
    Report,
    Verdict,
    eql_summary,
    fair_caption,
)

_COLORS = {
    EQL: "#0f7b5f",
    "candidate": "#8e5cb5",
    MQL: "#6b6b6b",
    "sql": "#2f6db5",
    "event": "#c7862c",
}
_OTHER_COLORS = ("#b5443a", "#3a9fb5", "#7d8f2a", "#b53a8e", "#5a5ab5")

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;
 margin:2rem auto;max-width:1200px;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2.2rem}
.meta{color:#666}.verdict{font-size:1.05rem;background:#f3f7f5;border-left:4px solid #0f7b5f;
 padding:.8rem 1rem}
table{border-collapse:collapse;margin:.6rem 0;font-variant-numeric:tabular-nums}
th,td{padding:.25rem .6rem;border-bottom:1px solid #e3e3e3;text-align:right;white-space:nowrap}
th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){text-align:left}
th{background:#fafafa;font-weight:600}caption{caption-side:bottom;text-align:left;color:#555;
 padding-top:.3rem}
svg{max-width:100%;height:auto}svg text{font:12px system-ui,sans-serif;fill:#1d1d1f}
.scroll{overflow-x:auto}svg .axis{stroke:#999}
svg .grid{stroke:#eee}.note{color:#555;font-size:.9rem}
"""


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _ratio(value: float | None) -> str:
    return "n/a vs MQL" if value is None else f"{value:.2f}× MQL"


def _interval(low: float | None, high: float | None) -> str:
    return "n/a" if low is None or high is None else f"{_pct(low)}–{_pct(high)}"


def _color(lead_type: str, index: int = 0) -> str:
    base = lead_type.split(":")[0]
    return _COLORS.get(base, _OTHER_COLORS[index % len(_OTHER_COLORS)])


def _conversion_label(c: Conversion, name: str) -> str:
    """The words beside a bar: the count always comes with its rate and the MQL comparison."""
    return (
        f"{name} · {c.opportunities} of {c.measured} measured ({c.leads} leads, {c.open} open)"
        f" · {_pct(c.rate)} [{_interval(c.ci_low, c.ci_high)}] · {_ratio(c.rate_ratio_vs_mql)}"
        f" at {_pct(c.mql_rate)}"
    )


# --- charts ----------------------------------------------------------------------------------


def _rate_bars(rows: Sequence[tuple[str, Conversion]], *, title: str) -> str:
    """Horizontal bars of conversion rates with 95% interval whiskers, one labelled row each."""
    if not rows:
        return ""
    # room for the longest name at about 7 px a character, within reason
    label_width = min(300, max(90, 7 * max(len(name) for name, _ in rows) + 16))
    plot_width, row_height, label_room = 330, 30, 640
    top = max(
        [c.ci_high for _, c in rows if c.ci_high is not None]
        + [c.mql_rate for _, c in rows if c.mql_rate is not None]
        + [0.05]
    )
    scale = plot_width / min(1.0, top * 1.1)
    height = row_height * len(rows) + 30
    width = label_width + plot_width + label_room
    parts = [
        f'<svg role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>'
    ]
    mql_rate = next((c.mql_rate for _, c in rows if c.mql_rate is not None), None)
    for i, (name, c) in enumerate(rows):
        y = 10 + i * row_height
        label = _conversion_label(c, name)
        parts.append(f"<g><title>{escape(label)}</title>")
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 15}" text-anchor="end">{escape(name)}</text>'
        )
        if c.rate is not None:
            w = c.rate * scale
            parts.append(
                f'<rect x="{label_width}" y="{y + 4}" width="{w:.1f}" height="{row_height - 12}" '
                f'fill="{_color(c.lead_type, i)}" opacity="0.85"/>'
            )
        if c.ci_low is not None and c.ci_high is not None:
            x1, x2 = label_width + c.ci_low * scale, label_width + c.ci_high * scale
            ym = y + row_height / 2 - 1
            parts.append(
                f'<path d="M{x1:.1f} {ym}H{x2:.1f}M{x1:.1f} {ym - 5}V{ym + 5}M{x2:.1f} {ym - 5}'
                f'V{ym + 5}" stroke="#222" stroke-width="1.4" fill="none"/>'
            )
        parts.append(
            f'<text x="{label_width + plot_width + 10}" y="{y + 15}">'
            f"{escape(label.split(' · ', 1)[1])}</text></g>"
        )
    if mql_rate is not None:
        x = label_width + mql_rate * scale
        parts.append(
            f'<g><title>MQL rate {_pct(mql_rate)}</title><line x1="{x:.1f}" y1="4" x2="{x:.1f}" '
            f'y2="{height - 22}" stroke="#6b6b6b" stroke-dasharray="4 3"/>'
            f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle">MQL {_pct(mql_rate)}'
            "</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _survival_chart(report: Report) -> str:
    """Kaplan–Meier curves: the share of leads with an opportunity by each day of the window."""
    curves = [c for t, c in report.time_to_opportunity.items() if ":" not in t]
    if not curves:
        return ""
    width, left, bottom, right, legend_row = 720, 50, 40, 20, 20
    plot_h = 260
    plot_w = width - left - right
    height = 20 + plot_h + bottom + legend_row * len(curves) + 10
    top = max(max(c.ci_high) for c in curves)
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
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_pct(value)}</text>'
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
    mql_at = mql_curve.at_window[0] if mql_curve else None
    for i, curve in enumerate(curves):
        color = _color(curve.lead_type, i)
        points = []
        previous = 0.0
        for day, value in zip(curve.days, curve.conversion, strict=True):
            points.append(xy(day, previous))
            points.append(xy(day, value))
            previous = value
        path = "M" + "L".join(f"{x:.1f} {y:.1f}" for x, y in points)
        at_window, low, high = curve.at_window
        legend = (
            f"{curve.lead_type} · {curve.events} opportunities among {curve.subjects} leads "
            f"followed · {_pct(at_window)} by day {window} [{_interval(low, high)}] · "
            f"{_ratio(at_window / mql_at if mql_at else None)}"
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


def _funnel_chart(report: Report) -> str:
    """The qualify funnel as bars; the EQL bar carries its conversion and the MQL comparison."""
    if not report.funnel:
        return ""
    width, row_height, label_width, plot_width = 1000, 30, 90, 420
    most = max(s.count for s in report.funnel) or 1
    height = row_height * len(report.funnel) + 10
    parts = [
        f'<svg role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>Qualify funnel</title>'
    ]
    for i, step in enumerate(report.funnel):
        y = 5 + i * row_height
        w = step.count / most * plot_width
        text = f"{step.count} leads"
        if step.step != "overlap":
            text += f" ({_pct(step.share_lost)} lost)"
        if step.step == EQL:
            c = step.conversion
            text = (
                f"{step.count} EQLs · {_pct(c.rate)} converted ({c.opportunities} of "
                f"{c.measured} measured, {c.open} open) · {_ratio(c.rate_ratio_vs_mql)} at "
                f"{_pct(c.mql_rate)}"
                if c
                else f"{step.count} EQLs · n/a converted (none measured yet) · {_ratio(None)}"
            )
        color = _COLORS[EQL] if step.step == EQL else "#9fb8ad"
        parts.append(
            f"<g><title>{escape(step.step + ': ' + text)}</title>"
            f'<text x="{label_width - 8}" y="{y + 18}" text-anchor="end">{escape(step.step)}</text>'
            f'<rect x="{label_width}" y="{y + 4}" width="{w:.1f}" height="{row_height - 10}" '
            f'fill="{color}"/><text x="{label_width + plot_width + 10}" y="{y + 18}">'
            f"{escape(text)}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


# --- tables ----------------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], caption: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return (
        f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
        "</table></div>"
    )


def _conversion_rows(rows: Iterable[Conversion]) -> list[list[str]]:
    return [
        [
            c.label, c.lead_type, str(c.leads), str(c.open), str(c.measured),
            str(c.opportunities), _pct(c.rate), _interval(c.ci_low, c.ci_high),
            _ratio(c.rate_ratio_vs_mql),
        ]
        for c in rows
    ]


_CONVERSION_HEADERS = (
    "segment", "lead type", "leads", "open", "measured", "opportunities", "rate", "95% CI",
    "vs MQL",
)


def _lead_type_table(report: Report) -> str:
    rows = [
        [
            c.lead_type, str(c.leads), str(c.open), str(c.influenced), str(c.no_account),
            str(c.measured), str(c.opportunities), _pct(c.rate), _interval(c.ci_low, c.ci_high),
            _ratio(c.rate_ratio_vs_mql), str(c.won), _pct(c.win_rate), f"{c.pipeline:,.0f}",
            "n/a" if c.median_days_to_opportunity is None
            else f"{c.median_days_to_opportunity:.0f}",
        ]
        for c in report.lead_types.values()
    ]
    return _table(
        ["lead type", "leads", "open", "influenced", "no account", "measured", "opportunities",
         "rate", "95% CI", "vs MQL", "won", "win rate", "pipeline", "median days"],
        rows,
        "rate = opportunities / measured; open, influenced and no-account leads are left out.",
    )


def _fair_table(comparison: FairComparison, verdict: Verdict) -> str:
    caption = fair_caption(comparison, verdict)
    rows = [
        [
            r.segment, "eql vs mql", str(r.eql.measured), str(r.eql.opportunities),
            _pct(r.eql.rate), _interval(r.eql.ci_low, r.eql.ci_high), str(r.mql.measured),
            str(r.mql.opportunities), _pct(r.mql.rate), _ratio(r.rate_ratio),
        ]
        for r in comparison.rows
    ]
    return _table(
        ["segment", "compared", "EQL measured", "EQL opportunities", "EQL rate", "EQL 95% CI",
         "MQL measured", "MQL opportunities", "MQL rate", "EQL vs MQL"],
        rows,
        caption,
    )


def render_html(report: Report) -> str:
    """The whole report as one HTML document that opens offline."""
    rate_rows = [(t, c) for t, c in report.lead_types.items()]
    partner_rows = [
        (r.label, r) for r in report.breakdowns["partner"].rows if r.lead_type == EQL
    ]
    sections = [
        "<h1>doorstep: do EQLs convert better than MQLs?</h1>",
        f'<p class="meta">Measured {escape(report.now.strftime("%Y-%m-%d %H:%M"))} UTC; '
        f"attribution window {report.window_days} days.</p>",
        f'<p class="verdict">{escape(eql_summary(report))}</p>',
        "<h2>Conversion to opportunity by lead type, with 95% intervals</h2>",
        _rate_bars(rate_rows, title="Conversion by lead type"),
        _lead_type_table(report),
        "<h2>Time to opportunity (Kaplan–Meier, open leads censored)</h2>",
        _survival_chart(report),
    ]
    if report.funnel:
        sections += ["<h2>Qualify funnel</h2>", _funnel_chart(report)]
    if partner_rows:
        sections += [
            "<h2>EQL conversion by partner</h2>",
            _rate_bars(partner_rows, title="EQL conversion by partner"),
        ]
    for breakdown in report.breakdowns.values():
        if breakdown.rows:
            sections += [
                f"<h2>{escape(breakdown.title)}</h2>",
                _table(
                    _CONVERSION_HEADERS,
                    _conversion_rows(breakdown.rows),
                    f"vs MQL: compared with {breakdown.compared_with}.",
                ),
            ]
    for name, comparison in report.fair_comparison.items():
        if comparison.rows:
            sections += [
                f"<h2>EQL vs MQL within {escape(SEGMENTS.get(name, name))}</h2>",
                _fair_table(comparison, report.eql_vs_mql),
            ]
    overall = report.fair_comparison.get(ALL_SEGMENTS)
    if overall is not None and overall.adjusted is not None:
        sections.append(f"<p>{escape(fair_caption(overall, report.eql_vs_mql))}</p>")
    if report.holdout is not None:
        h = report.holdout
        lift = (
            f"{h.lift.ratio:.2f}× (95% CI {h.lift.ci_low:.2f}–{h.lift.ci_high:.2f})"
            if h.lift
            else "n/a"
        )
        sections += [
            f"<h2>Holdout: doorstep EQLs with a motion vs {h.share:.0%} held out</h2>",
            _table(
                _CONVERSION_HEADERS,
                _conversion_rows([h.treated, h.held_out]),
                f"Lift of the motion: {lift}. vs MQL: compared with all MQLs.",
            ),
        ]
    sections += [f'<p class="note">{escape(n)}</p>' for n in report.notes]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>doorstep report</title><style>{_CSS}</style></head><body>"
        + "\n".join(s for s in sections if s)
        + "</body></html>\n"
    )


def write_html(report: Report, path: Path | str) -> Path:
    """Write the report as a self-contained HTML file and return its path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(report), encoding="utf-8")
    return target
