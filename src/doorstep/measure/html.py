"""The measurement report as one self-contained HTML file: inline CSS and SVG, nothing fetched.

Every EQL count on the page stands beside its conversion rate and the MQL comparison.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path

from doorstep.lifecycle import EQL
from doorstep.measure import format as fmt
from doorstep.measure.charts import conversion_chart, funnel_chart, survival_chart
from doorstep.measure.model import (
    ALL_SEGMENTS,
    DOORSTEP,
    SEGMENTS,
    Conversion,
    FairComparison,
    Report,
    Verdict,
)
from doorstep.measure.report import eql_summary
from doorstep.measure.text import fair_caption

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
            str(c.opportunities), fmt.rate_cell(c),
            fmt.interval(c.ci_low, c.ci_high),
            fmt.ratio_vs_mql(c.rate_ratio_vs_mql),
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
            str(c.measured), str(c.opportunities), fmt.rate_cell(c),
            fmt.interval(c.ci_low, c.ci_high),
            fmt.ratio_vs_mql(c.rate_ratio_vs_mql), str(c.won), fmt.pct(c.win_rate),
            f"{c.pipeline:,.0f}",
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
            fmt.pct(r.eql.rate), fmt.interval(r.eql.ci_low, r.eql.ci_high), str(r.mql.measured),
            str(r.mql.opportunities), fmt.pct(r.mql.rate), fmt.ratio_vs_mql(r.rate_ratio),
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
        (r.label, r) for r in report.breakdowns["partner"].rows
        if r.lead_type == EQL and r.origin == DOORSTEP
    ]
    mql_rate = report.mql.rate if report.mql else None
    sections = [
        "<h1>doorstep: do EQLs convert better than MQLs?</h1>",
        f'<p class="meta">Measured {escape(report.now.strftime("%Y-%m-%d %H:%M"))} UTC; '
        f"attribution window {report.window_days} days.</p>",
        f'<p class="verdict">{escape(eql_summary(report))}</p>',
        "<h2>Conversion to opportunity by lead type, with 95% intervals</h2>",
        conversion_chart(rate_rows, mql_rate, title="Conversion by lead type"),
        _lead_type_table(report),
        "<h2>Time to opportunity (Kaplan–Meier, open leads censored)</h2>",
        survival_chart(report),
    ]
    if report.funnel:
        sections += ["<h2>Qualify funnel</h2>", funnel_chart(report.funnel, mql_rate)]
    if partner_rows:
        sections += [
            "<h2>EQLs surfaced by each partner (doorstep EQLs), as measured</h2>",
            conversion_chart(partner_rows, mql_rate, title="EQL conversion by partner"),
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
            fmt.ratio_with_interval(h.lift.ratio, h.lift.ci_low, h.lift.ci_high)
            if h.lift else fmt.NA
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
