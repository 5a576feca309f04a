"""The measurement report's computation: do EQLs convert better than behaviour-scored leads?

Load the store into DuckDB (`measure.load`), attribute and count there, then run the statistics
on the counts into the report's data (`measure.model`); `measure.text` and `measure.html`
render it. Every count of leads is reported beside its conversion rate and the MQL rate it is
compared with (no vanity metric).

Lead types: every imported `source_type` (mql, sql, event, eql, ...) is its own type. Doorstep's
own leads that became EQLs join type `eql` (the clock starts when they became an EQL, so a new
EQL stays open until its window closes); `origin` keeps imported and doorstep EQLs apart (see the
`origin` breakdown, and the per-partner rows). Doorstep candidates are typed by the first gate
they failed (`candidate:warmth`, `candidate:fit`, ...), and counted once more under `candidate`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import duckdb
import numpy as np

from doorstep.lifecycle import EQL, funnel_steps
from doorstep.measure import format as fmt
from doorstep.measure.attribution import INFLUENCED, MEASURED, OPEN, attribute_opportunities
from doorstep.measure.load import LEADS_SQL, SEGMENTS_SQL, load_store
from doorstep.measure.model import (
    ALL_SEGMENTS,
    BREAKDOWNS,
    CANDIDATE,
    DOORSTEP,
    MIN_AT_RISK,
    MQL,
    ORIGIN_LABELS,
    SEGMENTS,
    Breakdown,
    Conversion,
    FairComparison,
    FunnelRow,
    Holdout,
    Report,
    SegmentRow,
    TimeToOpportunity,
    Verdict,
)
from doorstep.measure.stats import (
    ALPHA,
    POWER,
    RateRatio,
    kaplan_meier,
    leads_needed,
    mantel_haenszel_rate_ratio,
    rate_ratio,
    two_proportion_test,
    wilson_interval,
)
from doorstep.store.times import naive_utc
from doorstep.workspace import Workspace

__all__ = [
    "ALL_SEGMENTS",
    "CANDIDATE",
    "EQL",
    "MQL",
    "SEGMENTS",
    "Conversion",
    "Report",
    "Verdict",
    "build_report",
    "eql_summary",
    "report_json",
]


# --- counting --------------------------------------------------------------------------------

_COUNTS_SQL = """
SELECT {group} AS label, lead_type, {partner_key} AS partner_key, {origin_key} AS origin_key,
       count(*) AS leads,
       count(*) FILTER (state = 'no_account') AS no_account,
       count(*) FILTER (state = 'open') AS open,
       count(*) FILTER (state = 'open' AND converted) AS open_with_opportunity,
       count(*) FILTER (state = 'influenced') AS influenced,
       count(*) FILTER ({counted}) AS measured,
       count(*) FILTER (({counted}) AND converted) AS opportunities,
       count(*) FILTER (({counted}) AND won) AS won,
       count(*) FILTER (({counted}) AND decided) AS decided,
       coalesce(sum(pipeline) FILTER ({counted}), 0) AS pipeline,
       median(days_to_opportunity) FILTER (({counted}) AND converted) AS median_days
FROM {source}
WHERE {where}
GROUP BY ALL
ORDER BY label, lead_type
"""
_MEASURED = f"state = '{MEASURED}'"


@dataclass(frozen=True)
class _Counts:
    label: str
    lead_type: str
    leads: int
    no_account: int
    open: int
    open_with_opportunity: int
    influenced: int
    measured: int
    opportunities: int
    won: int
    decided: int
    pipeline: float
    median_days: float | None
    partner_key: str | None = None
    origin_key: str | None = None


def _counts(
    con: duckdb.DuckDBPyConnection,
    group: str,
    where: str = "true",
    counted: str = _MEASURED,
    source: str = "lead_outcomes",
    *,
    partner_key: str = "NULL",
    origin_key: str = "NULL",
) -> list[_Counts]:
    sql = _COUNTS_SQL.format(group=group, where=where, counted=counted, source=source,
                             partner_key=partner_key, origin_key=origin_key)
    result = con.execute(sql)
    names = [d[0] for d in result.description or ()]
    rows: list[_Counts] = []
    for values in result.fetchall():
        row: dict[str, Any] = dict(zip(names, values, strict=True))
        row["label"] = str(row["label"])
        row["pipeline"] = float(row["pipeline"])
        if row["median_days"] is not None:
            row["median_days"] = float(row["median_days"])
        rows.append(_Counts(**row))
    return rows


def _conversion(counts: _Counts, mql_rate: float | None, label: str | None = None) -> Conversion:
    interval = wilson_interval(counts.opportunities, counts.measured)
    rate = counts.opportunities / counts.measured if counts.measured else None
    ratio = rate / mql_rate if rate is not None and mql_rate else None
    return Conversion(
        label=counts.label if label is None else label,
        lead_type=counts.lead_type,
        leads=counts.leads,
        no_account=counts.no_account,
        open=counts.open,
        open_with_opportunity=counts.open_with_opportunity,
        influenced=counts.influenced,
        measured=counts.measured,
        opportunities=counts.opportunities,
        rate=rate,
        ci_low=interval[0] if interval else None,
        ci_high=interval[1] if interval else None,
        won=counts.won,
        decided=counts.decided,
        win_rate=counts.won / counts.decided if counts.decided else None,
        pipeline=counts.pipeline,
        median_days_to_opportunity=counts.median_days,
        mql_rate=mql_rate,
        rate_ratio_vs_mql=ratio,
        partner_id=counts.partner_key,
        origin=counts.origin_key,
    )


def _sql_text(value: str) -> str:
    """A string literal for DuckDB SQL; lead types come from the data, so quotes are doubled."""
    return "'" + value.replace("'", "''") + "'"


def _type_order(lead_type: str) -> tuple[int, str]:
    order = {EQL: 0, CANDIDATE: 1, MQL: 3}
    if lead_type.startswith(CANDIDATE + ":"):
        return 2, lead_type
    return order.get(lead_type, 4), lead_type


def conversion_by_lead_type(con: duckdb.DuckDBPyConnection) -> dict[str, Conversion]:
    """Per lead type: counts, the conversion rate with its Wilson interval, and vs MQL."""
    rows = {c.lead_type: c for c in _counts(con, "'all'")}
    mql = rows.get(MQL)
    mql_rate = mql.opportunities / mql.measured if mql and mql.measured else None
    return {
        t: _conversion(rows[t], mql_rate, label=t) for t in sorted(rows, key=_type_order)
    }


def eql_vs_mql(eql: Conversion | None, mql: Conversion | None) -> Verdict:
    """Compare EQLs with MQLs: rate ratio, p-value and, when unsure, the leads still needed."""
    if eql is None or mql is None or not eql.measured or not mql.measured:
        missing = [
            name for name, c in ((EQL, eql), (MQL, mql)) if c is None or not c.measured
        ]
        sentence = (
            f"No verdict yet: no measured {' or '.join(n.upper() + 's' for n in missing)} "
            "(leads whose attribution window has closed)."
        )
        return Verdict(eql, mql, None, None, None, None, None, False, None, sentence)
    ratio = rate_ratio(eql.opportunities, eql.measured, mql.opportunities, mql.measured)
    test = two_proportion_test(eql.opportunities, eql.measured, mql.opportunities, mql.measured)
    p = test.p_value if test else None
    significant = p is not None and p < ALPHA
    needed: dict[str, int] | None = None
    if not significant:
        more = leads_needed(eql.opportunities, eql.measured, mql.opportunities, mql.measured)
        needed = {EQL: more[0], MQL: more[1]} if more else None
    return Verdict(
        eql,
        mql,
        ratio.ratio if ratio else None,
        ratio.ci_low if ratio else None,
        ratio.ci_high if ratio else None,
        test.method if test else None,
        p,
        significant,
        needed,
        _verdict_sentence(eql, mql, ratio, p, significant, needed, test.method if test else None),
    )


def _verdict_sentence(
    eql: Conversion,
    mql: Conversion,
    ratio: RateRatio | None,
    p: float | None,
    significant: bool,
    needed: dict[str, int] | None,
    method: str | None,
) -> str:
    head = f"EQLs convert at {fmt.rate_text(eql)} vs MQLs at {fmt.rate_text(mql)}"
    if ratio is not None:
        head += (
            f": {fmt.times(ratio.ratio)} "
            f"(95% CI {fmt.ratio_interval(ratio.ci_low, ratio.ci_high)})"
        )
    test = "Fisher's exact test" if method == "fisher" else "two-proportion z-test"
    if p is None:
        return head + "."
    if significant:
        return f"{head}; {fmt.p_value(p)} ({test}): a real difference."
    tail = f"{head}; {fmt.p_value(p)} ({test}): not significant yet"
    if needed is None:
        return tail + "; the observed rates are equal, so more leads alone cannot tell them apart."
    return (
        f"{tail}; about {needed[EQL]} more measured EQLs and {needed[MQL]} more measured MQLs "
        f"would give {POWER:.0%} power at these rates."
    )


def time_to_opportunity(
    con: duckdb.DuckDBPyConnection, window_days: int
) -> dict[str, TimeToOpportunity]:
    """Kaplan–Meier time to opportunity per lead type, open leads censored at their age."""
    sql = f"""
        SELECT CASE WHEN converted AND days_to_opportunity <= {window_days}
                    THEN days_to_opportunity
                    ELSE least(age_days, {window_days}) END AS duration,
               coalesce(converted AND days_to_opportunity <= {window_days}, false) AS event
        FROM lead_outcomes
        WHERE state IN ('{OPEN}', '{MEASURED}') AND lead_type = $lead_type
    """
    types = [
        str(t)
        for (t,) in con.execute(
            f"SELECT DISTINCT lead_type FROM lead_outcomes WHERE state IN ('{OPEN}', '{MEASURED}')"
        ).fetchall()
    ]
    curves: dict[str, TimeToOpportunity] = {}
    for lead_type in sorted(types, key=_type_order):
        data = con.execute(sql, {"lead_type": lead_type}).fetchnumpy()
        events = np.asarray(data["event"], dtype=bool)
        durations = np.asarray(data["duration"], dtype=np.float64)
        curve = kaplan_meier(durations, events)
        # Leads still followed on each day; the curve stops where fewer than MIN_AT_RISK remain.
        ordered = np.sort(durations)
        days = np.arange(window_days + 1)
        at_risk = len(ordered) - np.searchsorted(ordered, days, side="left")
        shown = days[at_risk >= MIN_AT_RISK]
        at = [curve.conversion_at(float(d)) for d in shown]
        curves[lead_type] = TimeToOpportunity(
            lead_type=lead_type,
            subjects=curve.subjects,
            events=int(events.sum()),
            days=shown.tolist(),
            conversion=[a[0] for a in at],
            ci_low=[a[1] for a in at],
            ci_high=[a[2] for a in at],
            at_risk=[int(n) for n in at_risk[: len(shown)]],
            window_days=window_days,
        )
    return curves


def _breakdown(
    con: duckdb.DuckDBPyConnection,
    name: str,
    column: str,
    types: Sequence[str],
    mql_rate: float | None,
    *,
    where: str = "true",
    counted: str = _MEASURED,
    compare_in_segment: bool = False,
    source: str = "lead_outcomes",
    label: Callable[[str], str] = str,
    partner_key: str = "NULL",
    origin_key: str = "NULL",
) -> Breakdown:
    if not types:
        return Breakdown(name, BREAKDOWNS[name], "all MQLs", [])
    type_list = ", ".join(_sql_text(t) for t in types)
    scope = f"({where}) AND lead_type IN ({type_list})"
    if compare_in_segment:
        scope = f"({where}) AND lead_type IN ({type_list}, {_sql_text(MQL)})"
    counts = [
        replace(c, label=label(c.label))
        for c in _counts(con, column, scope, counted, source, partner_key=partner_key,
                         origin_key=origin_key)
    ]
    baseline = {
        c.label: (c.opportunities / c.measured if c.measured else None)
        for c in counts
        if c.lead_type == MQL
    }
    rows = [
        _conversion(c, baseline.get(c.label) if compare_in_segment else mql_rate)
        for c in counts
        if c.lead_type in types
    ]
    rows.sort(key=lambda r: (_type_order(r.lead_type), r.label))
    compared = "MQLs in the same segment" if compare_in_segment else "all MQLs"
    return Breakdown(name, BREAKDOWNS[name], compared, rows)


PARTNER_OUTCOMES = "partner_outcomes"
SEGMENT_OUTCOMES = "segment_outcomes"


def _quarter_label(year_quarter: str) -> str:
    """20253 -> 2025-Q3: quarters are grouped as numbers, which is cheaper than as text."""
    return f"{year_quarter[:-1]}-Q{year_quarter[-1]}"


def breakdowns(
    con: duckdb.DuckDBPyConnection, lead_types: Mapping[str, Conversion]
) -> dict[str, Breakdown]:
    """Conversion by partner, relationship, warmth band, partner answer, quarter, rejection
    reason, origin, and sourced vs influenced."""
    mql = lead_types.get(MQL)
    mql_rate = mql.rate if mql else None
    partner_types = [t for t in (EQL, CANDIDATE) if t in lead_types]
    top_types = [t for t in lead_types if ":" not in t]
    result = {
        "origin": _breakdown(con, "origin", "origin", [EQL], mql_rate, origin_key="origin",
                             label=lambda o: ORIGIN_LABELS.get(o, o)),
        # Imported partner-sourced history and doorstep's own EQLs are rows of their own.
        "partner": _breakdown(
            con, "partner", f"partner || ' · ' || CASE origin WHEN '{DOORSTEP}' THEN "
            f"'{ORIGIN_LABELS[DOORSTEP]}' ELSE '{ORIGIN_LABELS['imported']}' END",
            partner_types, mql_rate, where="partner_id IS NOT NULL",
            source=PARTNER_OUTCOMES, partner_key="partner_id", origin_key="origin",
        ),
        "relationship": _breakdown(
            con, "relationship", "relationship", partner_types, mql_rate,
            where="partner_id IS NOT NULL", source=PARTNER_OUTCOMES,
        ),
        "warmth_band": _breakdown(
            con, "warmth_band", "warmth_band", partner_types, mql_rate,
            where=f"origin = '{DOORSTEP}'", source=PARTNER_OUTCOMES,
        ),
        "partner_answer": _breakdown(
            con, "partner_answer", "partner_answer", partner_types, mql_rate,
            where="partner_id IS NOT NULL", source=PARTNER_OUTCOMES,
        ),
        "quarter": _breakdown(
            con, "quarter", "year(created_at) * 10 + quarter(created_at)", top_types, mql_rate,
            compare_in_segment=True, label=_quarter_label,
        ),
        "rejection_reason": _breakdown(
            con, "rejection_reason", "rejection_reason", partner_types, mql_rate,
            where=f"origin = '{DOORSTEP}' AND rejection_reason <> 'not rejected'",
            source=PARTNER_OUTCOMES,
        ),
        "pipeline": _breakdown(
            con, "pipeline", f"CASE WHEN state = '{INFLUENCED}' THEN 'influenced' "
            "ELSE 'sourced' END", top_types, mql_rate,
            counted=f"state IN ('{MEASURED}', '{INFLUENCED}')",
        ),
    }
    return result


def fair_comparison(con: duckdb.DuckDBPyConnection) -> dict[str, FairComparison]:
    """EQL vs MQL within segments of our accounts, and the segment-adjusted rate ratio."""
    result: dict[str, FairComparison] = {}
    dimensions = {**{d: d for d in SEGMENTS}, ALL_SEGMENTS: "employees || ' / ' || industry "
                  "|| ' / ' || country"}
    for name, column in dimensions.items():
        counts = _counts(con, column, source=SEGMENT_OUTCOMES)
        by_segment: dict[str, dict[str, _Counts]] = {}
        for c in counts:
            by_segment.setdefault(c.label, {})[c.lead_type] = c
        rows: list[SegmentRow] = []
        strata: list[tuple[int, int, int, int]] = []
        for segment in sorted(by_segment, key=_segment_order):
            pair = by_segment[segment]
            e = pair.get(EQL) or _empty(segment, EQL)
            m = pair.get(MQL) or _empty(segment, MQL)
            m_rate = m.opportunities / m.measured if m.measured else None
            eql_row = _conversion(e, m_rate)
            mql_row = _conversion(m, m_rate)
            if e.measured and m.measured:
                strata.append((e.opportunities, e.measured, m.opportunities, m.measured))
            if name != ALL_SEGMENTS and (e.measured or m.measured):
                rows.append(SegmentRow(segment, eql_row, mql_row, eql_row.rate_ratio_vs_mql))
        result[name] = FairComparison(name, rows, mantel_haenszel_rate_ratio(strata), len(strata))
    return result


_EMPLOYEE_BANDS = ("1-49", "50-199", "200-999", "1000-4999", "5000+")


def _segment_order(segment: str) -> tuple[bool, int, str]:
    """Employee bands by size, 'unknown' last, everything else alphabetically."""
    band = _EMPLOYEE_BANDS.index(segment) if segment in _EMPLOYEE_BANDS else -1
    return (segment == "unknown", band, segment)


def _empty(label: str, lead_type: str) -> _Counts:
    return _Counts(label, lead_type, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, None)


def holdout_lift(
    con: duckdb.DuckDBPyConnection, share: float, mql_rate: float | None
) -> Holdout | None:
    """Doorstep EQLs with a motion vs held-out ones, when a holdout is configured."""
    if share <= 0:
        return None
    counts = {
        c.label: c
        for c in _counts(
            con,
            "CASE WHEN holdout THEN 'holdout' ELSE 'treated' END",
            f"lead_type = '{EQL}' AND origin = '{DOORSTEP}'",
        )
    }
    treated = _conversion(counts.get("treated") or _empty("treated", EQL), mql_rate)
    held = _conversion(counts.get("holdout") or _empty("holdout", EQL), mql_rate)
    lift = rate_ratio(treated.opportunities, treated.measured, held.opportunities, held.measured)
    test = two_proportion_test(
        treated.opportunities, treated.measured, held.opportunities, held.measured
    )
    p = test.p_value if test else None
    return Holdout(share, treated, held, lift, p, p is not None and p < ALPHA)


def qualify_funnel(con: duckdb.DuckDBPyConnection, origin: Breakdown) -> list[FunnelRow]:
    """Doorstep leads still in after each gate, then EQLs with their conversion vs MQL."""
    groups = con.execute(
        "SELECT status, failed_gates, count(*) FROM ds_leads GROUP BY ALL"
    ).fetchall()
    if not groups:
        return []
    doorstep = next((r for r in origin.rows if r.origin == DOORSTEP), None)
    return [
        FunnelRow(s.step, s.count, s.lost, s.share_lost, doorstep if s.step == EQL else None)
        for s in funnel_steps((str(st), fg, int(n)) for st, fg, n in groups)
    ]


def _notes(window_days: int, lead_types: Mapping[str, Conversion]) -> list[str]:
    notes = [
        f"A lead converts when an opportunity on its account is created within {window_days} "
        "days after it; an opportunity naming the lead (lead_id) always counts. Each "
        "opportunity counts at most once per lead type: with two leads of one type on an "
        "account, the most recent before the opportunity gets it.",
        f"Rates count only measured leads: those whose {window_days}-day window has closed, "
        "that have an account, and whose account was not already in open pipeline (those are "
        "'influenced', shown apart). A younger lead is open even if it already has an "
        "opportunity, since counting early successes but not early silence would inflate the "
        "rate; the Kaplan-Meier curves use open leads, censored at their age.",
        "Type eql holds imported partner-sourced leads and doorstep's EQLs, the latter from the "
        "day they became EQLs; the origin breakdown shows them apart.",
        "Intervals are 95% Wilson intervals; the EQL vs MQL ratio uses a log-method interval.",
    ]
    no_account = sum(c.no_account for c in lead_types.values())
    if no_account:
        notes.append(
            f"{no_account:,} {'lead has' if no_account == 1 else 'leads have'} no account_id "
            f"and {'is' if no_account == 1 else 'are'} left out of every rate: nothing but a "
            f"named opportunity could be attributed to {'it' if no_account == 1 else 'them'}."
        )
    return notes


def build_report(workspace: Workspace, *, now: datetime | None = None) -> Report:
    """Measure conversion per lead type, EQL vs MQL, breakdowns and fair comparisons."""
    moment = naive_utc(now)
    measure = workspace.config.measure
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    try:
        load_store(workspace, con, measure.holdout_share)
        con.execute(LEADS_SQL)
        attribute_opportunities(con, window_days=measure.window_days, now=moment)
        con.execute(SEGMENTS_SQL)
        lead_types = conversion_by_lead_type(con)
        mql = lead_types.get(MQL)
        parts = breakdowns(con, lead_types)
        report = Report(
            now=moment,
            window_days=measure.window_days,
            lead_types=lead_types,
            eql_vs_mql=eql_vs_mql(lead_types.get(EQL), mql),
            time_to_opportunity=time_to_opportunity(con, measure.window_days),
            breakdowns=parts,
            fair_comparison=fair_comparison(con),
            holdout=holdout_lift(con, measure.holdout_share, mql.rate if mql else None),
            funnel=qualify_funnel(con, parts["origin"]),
            notes=_notes(measure.window_days, lead_types),
        )
    finally:
        con.close()
    return report


# --- JSON ----------------------------------------------------------------------------------------


def report_json(report: Report) -> dict[str, Any]:
    """The report as JSON-ready data: per lead type, eql_vs_mql, curves, breakdowns."""
    return {
        "generated_at": report.now.isoformat(),
        "window_days": report.window_days,
        "lead_types": {t: c.as_json() for t, c in report.lead_types.items()},
        "eql_vs_mql": report.eql_vs_mql.as_json(),
        "time_to_opportunity": {
            t: c.as_json(report.time_to_opportunity.get(MQL))
            for t, c in report.time_to_opportunity.items()
        },
        "breakdowns": {n: b.as_json() for n, b in report.breakdowns.items()},
        "fair_comparison": {n: f.as_json() for n, f in report.fair_comparison.items()},
        "holdout": report.holdout.as_json() if report.holdout else None,
        "funnel": [s.as_json() for s in report.funnel],
        "notes": report.notes,
    }


def eql_summary(report: Report) -> str:
    """One sentence on EQLs that never gives their count without their rate and the MQL rate."""
    eql = report.lead_types.get(EQL)
    if eql is None:
        return "No EQLs yet."
    verdict = report.eql_vs_mql
    if verdict.p_value is not None:
        return verdict.sentence
    mql = report.mql
    return f"{fmt.eql_sentence(eql.leads, eql, mql.rate if mql else None)}. {verdict.sentence}"


