"""The measurement report for the terminal: tables narrow enough for 80 columns, headline first."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from doorstep.lifecycle import EQL
from doorstep.measure import format as fmt
from doorstep.measure.model import (
    ALL_SEGMENTS,
    MIN_AT_RISK,
    MQL,
    SEGMENTS,
    Conversion,
    FairComparison,
    Report,
    Verdict,
)
from doorstep.measure.report import eql_summary


def _money(value: float) -> str:
    return f"{value:,.0f}"


def _days(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _table(
    title: str, columns: Sequence[str], caption: str | None = None, text_columns: int = 1
) -> Table:
    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i < text_columns else "right", overflow="fold")
    return table


def _lead_type_tables(report: Report) -> list[Table]:
    """Two tables per lead type, narrow enough for a terminal: conversion, then outcomes."""
    conversion = _table(
        f"Conversion to opportunity by lead type ({report.window_days}-day window)",
        ["lead type", "leads", "open", "influenced", "no account", "measured", "opportunities",
         "rate", "95% CI", "vs MQL"],
        caption="rate = opportunities / measured; open, influenced and no-account leads are "
        "left out of it.",
    )
    outcomes = _table(
        "What the measured leads' opportunities became",
        ["lead type", "rate", "vs MQL", "won", "win rate", "pipeline", "median days",
         f"by day {report.window_days} (KM)"],
    )
    for c in report.lead_types.values():
        curve = report.time_to_opportunity.get(c.lead_type)
        at = curve.at_window if curve else None
        km = fmt.pct(at[0]) if at else "n/a"
        conversion.add_row(
            c.lead_type, f"{c.leads:,}", f"{c.open:,}", f"{c.influenced:,}", f"{c.no_account:,}",
            f"{c.measured:,}", f"{c.opportunities:,}", fmt.rate_cell(c),
            fmt.interval(c.ci_low, c.ci_high),
            fmt.ratio_vs_mql(c.rate_ratio_vs_mql),
        )
        outcomes.add_row(
            c.lead_type, fmt.rate_cell(c), fmt.ratio_vs_mql(c.rate_ratio_vs_mql), f"{c.won:,}",
            fmt.pct(c.win_rate),
            _money(c.pipeline), _days(c.median_days_to_opportunity), km,
        )
    return [conversion, outcomes]


def _conversion_table(title: str, rows: Iterable[Conversion], caption: str) -> Table:
    table = _table(
        title,
        ["segment", "lead type", "leads", "open", "measured", "opportunities", "rate", "95% CI",
         "vs MQL"],
        caption=caption,
        text_columns=2,
    )
    for c in rows:
        table.add_row(
            c.label, c.lead_type, f"{c.leads:,}", f"{c.open:,}", f"{c.measured:,}",
            f"{c.opportunities:,}", fmt.rate_cell(c), fmt.interval(c.ci_low, c.ci_high),
            fmt.ratio_vs_mql(c.rate_ratio_vs_mql),
        )
    return table


def fair_caption(comparison: FairComparison, verdict: Verdict) -> str:
    """The segment-adjusted EQL/MQL ratio beside the crude one and the rates behind it."""
    adjusted = comparison.adjusted
    ratio = (
        f"{fmt.ratio_vs_mql(adjusted.ratio)} "
        f"(95% CI {fmt.ratio_interval(adjusted.ci_low, adjusted.ci_high)})"
        if adjusted
        else "n/a vs MQL (no segment has both measured EQLs and MQLs)"
    )
    eql_rate = verdict.eql.rate if verdict.eql else None
    mql_rate = verdict.mql.rate if verdict.mql else None
    crude = fmt.times(verdict.rate_ratio)
    return (
        f"Mantel-Haenszel EQL/MQL adjusted for {comparison.dimension}: {ratio}, over "
        f"{comparison.strata_used} segments with both; crude {crude} (EQL {fmt.pct(eql_rate)} vs "
        f"MQL {fmt.pct(mql_rate)})."
    )


def _fair_table(comparison: FairComparison, verdict: Verdict) -> Table:
    caption = fair_caption(comparison, verdict)
    table = _table(
        f"EQL vs MQL within {SEGMENTS.get(comparison.dimension, comparison.dimension)}",
        ["segment", "EQL measured", "EQL opportunities", "EQL rate", "EQL 95% CI",
         "MQL measured", "MQL opportunities", "MQL rate", "EQL vs MQL"],
        caption=caption,
    )
    for r in comparison.rows:
        table.add_row(
            r.segment, f"{r.eql.measured:,}", f"{r.eql.opportunities:,}", fmt.pct(r.eql.rate),
            fmt.interval(r.eql.ci_low, r.eql.ci_high), f"{r.mql.measured:,}",
            f"{r.mql.opportunities:,}", fmt.pct(r.mql.rate), fmt.ratio_vs_mql(r.rate_ratio),
        )
    return table


def _survival_table(report: Report) -> Table:
    window = report.window_days
    marks = sorted({d for d in (window // 3, 2 * window // 3, window) if d > 0})
    mql_curve = report.time_to_opportunity.get(MQL)
    table = _table(
        "Time to opportunity (Kaplan-Meier, open leads censored)",
        ["lead type", "leads followed", "opportunities", *[f"by day {d}" for d in marks],
         f"day-{window} 95% CI", "vs MQL"],
    )
    mql_at = mql_curve.at_window if mql_curve else None
    stopped = []
    for curve in report.time_to_opportunity.values():
        at = curve.at_window
        if at is None:
            stopped.append(curve.lead_type)
        by_day = [fmt.pct(curve.conversion[d]) if d < len(curve.days) else "too few"
                  for d in marks]
        table.add_row(
            curve.lead_type, f"{curve.subjects:,}", f"{curve.events:,}", *by_day,
            fmt.interval(at[1], at[2]) if at else "too few",
            fmt.ratio_vs_mql(at[0] / mql_at[0] if at and mql_at and mql_at[0] else None),
        )
    table.caption = (
        f"Each curve stops where fewer than {MIN_AT_RISK} leads are still followed"
        + (f" ({', '.join(stopped)} before day {window})." if stopped else ".")
    )
    table.caption_justify = "left"
    return table


def _funnel_table(report: Report) -> Table:
    table = _table(
        "Qualify funnel (doorstep leads)", ["step", "leads", "lost", "share lost", "conversion"]
    )
    for s in report.funnel:
        conversion = ""
        if s.step == EQL:
            c = s.conversion
            conversion = fmt.eql_sentence(s.count, c, report.mql.rate if report.mql else None)
        table.add_row(s.step, f"{s.count:,}", f"{s.lost:,}", fmt.pct(s.share_lost), conversion)
    return table


def render_text(report: Report) -> list[RenderableType]:
    """The report as rich renderables for the terminal, headline first."""
    parts: list[RenderableType] = [
        Text(eql_summary(report), style="bold"),
        *_lead_type_tables(report),
        _survival_table(report),
    ]
    for b in report.breakdowns.values():
        if b.rows:
            caption = f"vs MQL: compared with {b.compared_with}."
            parts.append(_conversion_table(b.title, b.rows, caption))
    verdict = report.eql_vs_mql
    parts += [_fair_table(f, verdict) for f in report.fair_comparison.values() if f.rows]
    adjusted = report.fair_comparison.get(ALL_SEGMENTS)
    if adjusted is not None and adjusted.adjusted is not None:
        parts.append(Text(fair_caption(adjusted, verdict)))
    if report.holdout is not None:
        h = report.holdout
        lift = (
            fmt.ratio_with_interval(h.lift.ratio, h.lift.ci_low, h.lift.ci_high)
            if h.lift else fmt.NA
        )
        p = fmt.p_value(h.p_value) if h.p_value is not None else "no test yet"
        parts.append(
            _conversion_table(
                f"Holdout: doorstep EQLs with a motion vs {h.share:.0%} held out",
                [h.treated, h.held_out],
                f"Lift of the motion: {lift}; {p}. vs MQL: compared with all MQLs.",
            )
        )
    if report.funnel:
        parts.append(_funnel_table(report))
    parts += [Text(note, style="dim") for note in report.notes]
    return parts
