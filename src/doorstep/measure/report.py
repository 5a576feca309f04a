"""The measurement report: do EQLs convert better than behaviour-scored leads, and how sure are we.

Load the store's tables with a few selects into Arrow, attribute and count in DuckDB, then run
the statistics on the counts. Every count of leads is reported beside its conversion rate and
the MQL rate it is compared with (no vanity metric).

Lead types: every imported `source_type` (mql, sql, event, eql, ...) is its own type. Doorstep's
own leads that became EQLs join type `eql` (the clock starts when they became an EQL, so a new
EQL stays open until its window closes); `origin` keeps imported and doorstep EQLs apart (see the
`origin` breakdown). Doorstep candidates are typed by the first gate they failed
(`candidate:warmth`, `candidate:fit`, ...), and counted once more under `candidate` as a whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from sqlalchemy import Connection

from doorstep.measure.attribution import (
    INFLUENCED,
    MEASURED,
    OPEN,
    attribute_opportunities,
    is_holdout,
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
from doorstep.workspace import Workspace

EQL = "eql"
MQL = "mql"
CANDIDATE = "candidate"
DOORSTEP = "doorstep"
IMPORTED = "imported"
CANDIDATE_STATUSES = ("candidate", "warmth_requested")

BREAKDOWNS: dict[str, str] = {
    "origin": "EQLs by origin (imported history, doorstep)",
    "partner": "By partner",
    "relationship": "By partner relationship",
    "warmth_band": "By warmth score",
    "partner_answer": "By partner answer",
    "quarter": "By quarter the lead was created",
    "rejection_reason": "By rep rejection reason",
    "pipeline": "Sourced vs influenced (account already in open pipeline)",
}
SEGMENTS: dict[str, str] = {
    "employees": "employee band",
    "industry": "industry",
    "country": "country",
}
ALL_SEGMENTS = "employees × industry × country"


# --- the report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conversion:
    """A group of leads and what became of them: counts, the rate with its interval, vs MQL.

    `leads` = no_account + open + influenced + measured; the rate is opportunities / measured.
    `open_with_opportunity` counts open leads that already have an opportunity (not in the rate).
    """

    label: str
    lead_type: str
    leads: int
    no_account: int
    open: int
    open_with_opportunity: int
    influenced: int
    measured: int
    opportunities: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    won: int
    decided: int
    win_rate: float | None
    pipeline: float
    median_days_to_opportunity: float | None
    mql_rate: float | None
    rate_ratio_vs_mql: float | None

    def as_json(self) -> dict[str, Any]:
        """The row as JSON-ready values."""
        return {k: _clean(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Verdict:
    """EQL vs MQL: the rate ratio, a test, and how many more leads a verdict needs."""

    eql: Conversion | None
    mql: Conversion | None
    rate_ratio: float | None
    ci_low: float | None
    ci_high: float | None
    test: str | None
    p_value: float | None
    significant: bool
    leads_needed: dict[str, int] | None
    sentence: str

    def as_json(self) -> dict[str, Any]:
        """The verdict as JSON-ready values."""
        return {
            "eql_rate": _clean(self.eql.rate if self.eql else None),
            "mql_rate": _clean(self.mql.rate if self.mql else None),
            "eql_measured": self.eql.measured if self.eql else 0,
            "eql_opportunities": self.eql.opportunities if self.eql else 0,
            "mql_measured": self.mql.measured if self.mql else 0,
            "mql_opportunities": self.mql.opportunities if self.mql else 0,
            "rate_ratio": _clean(self.rate_ratio),
            "ci_low": _clean(self.ci_low),
            "ci_high": _clean(self.ci_high),
            "test": self.test,
            "p_value": _clean(self.p_value),
            "significant": self.significant,
            "leads_needed": self.leads_needed,
            "power": POWER,
            "alpha": ALPHA,
            "sentence": self.sentence,
        }


@dataclass(frozen=True)
class TimeToOpportunity:
    """A Kaplan–Meier curve of one lead type: the share with an opportunity by each day."""

    lead_type: str
    subjects: int
    events: int
    days: list[int]
    conversion: list[float]
    ci_low: list[float]
    ci_high: list[float]

    @property
    def at_window(self) -> tuple[float, float, float]:
        """Conversion by the last day of the window, with its interval."""
        return self.conversion[-1], self.ci_low[-1], self.ci_high[-1]

    def as_json(self, mql: TimeToOpportunity | None) -> dict[str, Any]:
        """The curve as JSON-ready values, beside MQLs' conversion by the end of the window."""
        rate, low, high = self.at_window
        mql_rate = mql.at_window[0] if mql else None
        return {
            "subjects": self.subjects,
            "events": self.events,
            "conversion_at_window": _clean(rate),
            "ci_low_at_window": _clean(low),
            "ci_high_at_window": _clean(high),
            "mql_conversion_at_window": _clean(mql_rate),
            "rate_ratio_vs_mql": _clean(rate / mql_rate if mql_rate else None),
            "days": self.days,
            "conversion": [_clean(v) for v in self.conversion],
            "ci_low": [_clean(v) for v in self.ci_low],
            "ci_high": [_clean(v) for v in self.ci_high],
        }


@dataclass(frozen=True)
class Breakdown:
    """Conversion per segment of one attribute (partner, warmth band, ...) and lead type."""

    name: str
    title: str
    compared_with: str
    rows: list[Conversion]

    def as_json(self) -> dict[str, Any]:
        """The breakdown as JSON-ready values."""
        return {
            "title": self.title,
            "compared_with": self.compared_with,
            "rows": [r.as_json() for r in self.rows],
        }


@dataclass(frozen=True)
class SegmentRow:
    """EQLs and MQLs of one segment side by side."""

    segment: str
    eql: Conversion
    mql: Conversion
    rate_ratio: float | None


@dataclass(frozen=True)
class FairComparison:
    """EQL vs MQL within segments, and the Mantel–Haenszel segment-adjusted rate ratio."""

    dimension: str
    rows: list[SegmentRow]
    adjusted: RateRatio | None
    strata_used: int

    def as_json(self) -> dict[str, Any]:
        """The comparison as JSON-ready values."""
        return {
            "adjusted_rate_ratio": _clean(self.adjusted.ratio if self.adjusted else None),
            "ci_low": _clean(self.adjusted.ci_low if self.adjusted else None),
            "ci_high": _clean(self.adjusted.ci_high if self.adjusted else None),
            "strata_used": self.strata_used,
            "segments": [
                {
                    "segment": r.segment,
                    "eql": r.eql.as_json(),
                    "mql": r.mql.as_json(),
                    "rate_ratio": _clean(r.rate_ratio),
                }
                for r in self.rows
            ],
        }


@dataclass(frozen=True)
class Holdout:
    """Doorstep EQLs that got a motion vs the held-out ones that got none: the motion's lift."""

    share: float
    treated: Conversion
    held_out: Conversion
    lift: RateRatio | None
    p_value: float | None
    significant: bool

    def as_json(self) -> dict[str, Any]:
        """The holdout comparison as JSON-ready values."""
        return {
            "share": self.share,
            "treated": self.treated.as_json(),
            "holdout": self.held_out.as_json(),
            "lift": _clean(self.lift.ratio if self.lift else None),
            "ci_low": _clean(self.lift.ci_low if self.lift else None),
            "ci_high": _clean(self.lift.ci_high if self.lift else None),
            "p_value": _clean(self.p_value),
            "significant": self.significant,
        }


@dataclass(frozen=True)
class FunnelRow:
    """One step of the qualify funnel; the EQL step carries doorstep EQLs' conversion."""

    step: str
    count: int
    lost: int
    share_lost: float
    conversion: Conversion | None = None

    def as_json(self) -> dict[str, Any]:
        """The step as JSON-ready values."""
        row: dict[str, Any] = {
            "step": self.step,
            "count": self.count,
            "lost": self.lost,
            "share_lost": self.share_lost,
        }
        if self.conversion is not None:
            c = self.conversion
            row.update(
                measured=c.measured,
                open=c.open,
                opportunities=c.opportunities,
                rate=_clean(c.rate),
                ci_low=_clean(c.ci_low),
                ci_high=_clean(c.ci_high),
                mql_rate=_clean(c.mql_rate),
                rate_ratio_vs_mql=_clean(c.rate_ratio_vs_mql),
            )
        return row


@dataclass(frozen=True)
class Report:
    """Everything `doorstep report` shows, computed once."""

    now: datetime
    window_days: int
    lead_types: dict[str, Conversion]
    eql_vs_mql: Verdict
    time_to_opportunity: dict[str, TimeToOpportunity]
    breakdowns: dict[str, Breakdown]
    fair_comparison: dict[str, FairComparison]
    holdout: Holdout | None
    funnel: list[FunnelRow]
    notes: list[str] = field(default_factory=list)

    @property
    def mql(self) -> Conversion | None:
        """The MQL row everything is compared with, if there are MQLs."""
        return self.lead_types.get(MQL)


# --- loading the store into DuckDB ------------------------------------------------------------


_TEXT, _FLOAT, _INT = pa.string(), pa.float64(), pa.int64()

# name -> (select against the store, Arrow types of its columns); timestamps come as text, and
# table names are quoted because OVERLAPS is an SQL keyword.
_SELECTS: dict[str, tuple[str, dict[str, pa.DataType]]] = {
    "src_leads": (
        "SELECT lead_id, source_type, CAST(created_at AS TEXT), account_id FROM \"source_leads\"",
        {"lead_id": _TEXT, "source_type": _TEXT, "created_at": _TEXT, "account_id": _TEXT},
    ),
    "ds_leads": (
        "SELECT lead_id, account_id, status, partner_id, partner_account_id, failed_gates, "
        "warmth_score, CAST(created_at AS TEXT) FROM \"leads\"",
        {
            "lead_id": _TEXT, "account_id": _TEXT, "status": _TEXT, "partner_id": _TEXT,
            "partner_account_id": _TEXT, "failed_gates": _TEXT, "warmth_score": _FLOAT,
            "created_at": _TEXT,
        },
    ),
    "eql_times": (
        "SELECT lead_id, CAST(MIN(at) AS TEXT) FROM \"lead_events\" WHERE to_status = 'eql' "
        "GROUP BY lead_id",
        {"lead_id": _TEXT, "eql_at": _TEXT},
    ),
    "rejections": (
        "SELECT lead_id, CAST(detail AS TEXT), CAST(at AS TEXT) FROM \"lead_events\" "
        "WHERE kind = 'rejected'",
        {"lead_id": _TEXT, "detail": _TEXT, "rejected_at": _TEXT},
    ),
    "opps_raw": (
        "SELECT opportunity_id, account_id, CAST(created_at AS TEXT), amount, "
        "CAST(closed_at AS TEXT), CAST(is_won AS INTEGER), lead_id FROM \"opportunities\"",
        {
            "opportunity_id": _TEXT, "account_id": _TEXT, "created_at": _TEXT, "amount": _FLOAT,
            "closed_at": _TEXT, "is_won": _INT, "lead_id": _TEXT,
        },
    ),
    "account_facts": (
        "SELECT account_id, industry, employees, country FROM \"accounts\"",
        {"account_id": _TEXT, "industry": _TEXT, "employees": _INT, "country": _TEXT},
    ),
    "partner_overlaps": (
        "SELECT account_id, partner_id, partner_account_id, relationship, probability "
        "FROM \"overlaps\"",
        {
            "account_id": _TEXT, "partner_id": _TEXT, "partner_account_id": _TEXT,
            "relationship": _TEXT, "probability": _FLOAT,
        },
    ),
    "answers": (
        "SELECT partner_id, partner_account_id, answer, CAST(answered_at AS TEXT) "
        "FROM \"warmth_answers\"",
        {"partner_id": _TEXT, "partner_account_id": _TEXT, "answer": _TEXT, "answered_at": _TEXT},
    ),
    "partner_names": (
        "SELECT partner_id, name FROM \"partners\"",
        {"partner_id": _TEXT, "name": _TEXT},
    ),
}
_FETCH_ROWS = 250_000


def _fetch_arrow(conn: Connection, sql: str, schema: Mapping[str, pa.DataType]) -> pa.Table:
    """Run a select straight through the driver and return its rows as an Arrow table."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        batches: list[pa.RecordBatch] = []
        while rows := cursor.fetchmany(_FETCH_ROWS):
            # one list per column: much faster than zip(*rows) on wide batches
            columns = [
                pa.array([row[i] for row in rows], type=t) for i, t in enumerate(schema.values())
            ]
            batches.append(pa.record_batch(columns, names=list(schema)))
    finally:
        cursor.close()
    return pa.Table.from_batches(batches, schema=pa.schema(list(schema.items())))


def _load_store(workspace: Workspace, con: duckdb.DuckDBPyConnection, holdout_share: float) -> None:
    """Copy the tables the report needs from the store into DuckDB."""
    with workspace.store.engine.connect() as conn:
        tables = {name: _fetch_arrow(conn, sql, schema) for name, (sql, schema) in _SELECTS.items()}
    doorstep = tables["ds_leads"]
    held = [is_holdout(lead_id, holdout_share) for lead_id in doorstep["lead_id"].to_pylist()]
    tables["ds_leads"] = doorstep.append_column("holdout", pa.array(held, pa.bool_()))
    for name, table in tables.items():
        con.register(name, table)  # a view over the Arrow table: no copy


_LEADS_SQL = """
CREATE OR REPLACE TEMP TABLE opportunities AS
SELECT opportunity_id, account_id, TRY_CAST(created_at AS TIMESTAMP) AS created_at, amount,
       TRY_CAST(closed_at AS TIMESTAMP) AS closed_at,
       CASE is_won WHEN 1 THEN true WHEN 0 THEN false END AS is_won, lead_id
FROM opps_raw
WHERE TRY_CAST(created_at AS TIMESTAMP) IS NOT NULL;

CREATE OR REPLACE TEMP TABLE best_overlap AS
SELECT account_id, partner_id, partner_account_id, relationship
FROM partner_overlaps
QUALIFY row_number() OVER (
    PARTITION BY account_id ORDER BY probability DESC, partner_id, partner_account_id) = 1;

CREATE OR REPLACE TEMP TABLE latest_answers AS
SELECT partner_id, partner_account_id, lower(answer) AS answer
FROM answers
QUALIFY row_number() OVER (
    PARTITION BY partner_id, partner_account_id ORDER BY answered_at DESC) = 1;

CREATE OR REPLACE TEMP TABLE latest_rejections AS
SELECT lead_id,
       coalesce(nullif(trim(json_extract_string(detail, '$.reason')), ''), 'no reason given')
           AS reason
FROM rejections
QUALIFY row_number() OVER (PARTITION BY lead_id ORDER BY rejected_at DESC) = 1;

CREATE OR REPLACE TEMP TABLE leads AS
WITH doorstep AS (
    SELECT d.*, TRY_CAST(e.eql_at AS TIMESTAMP) AS eql_at,
           d.status NOT IN ('candidate', 'warmth_requested') OR e.eql_at IS NOT NULL AS ever_eql
    FROM ds_leads d LEFT JOIN eql_times e USING (lead_id)
),
typed AS (
    SELECT 'imported:' || s.lead_id AS lead_key, s.lead_id, 'imported' AS origin,
           lower(trim(s.source_type)) AS lead_type, s.account_id,
           TRY_CAST(s.created_at AS TIMESTAMP) AS created_at,
           b.partner_id, b.partner_account_id,
           CAST(NULL AS DOUBLE) AS warmth_score, false AS holdout
    FROM src_leads s
    LEFT JOIN best_overlap b
           ON b.account_id = s.account_id AND lower(trim(s.source_type)) = 'eql'
    UNION ALL
    SELECT 'doorstep:' || lead_id, lead_id, 'doorstep',
           CASE WHEN ever_eql THEN 'eql'
                ELSE 'candidate:'
                     || coalesce(nullif(split_part(failed_gates, ';', 1), ''), 'unknown')
           END,
           account_id,
           CASE WHEN ever_eql THEN coalesce(eql_at, TRY_CAST(created_at AS TIMESTAMP))
                ELSE TRY_CAST(created_at AS TIMESTAMP) END,
           partner_id, partner_account_id, warmth_score, holdout AND ever_eql
    FROM doorstep
)
SELECT * FROM typed WHERE created_at IS NOT NULL
UNION ALL
SELECT * REPLACE ('candidate' AS lead_type)
FROM typed WHERE created_at IS NOT NULL AND lead_type LIKE 'candidate:%';
"""

# After attribution: the attributes breakdowns group by, joined once for the leads that need
# them (partner-sourced leads; EQLs and MQLs for the segment comparisons).
_SEGMENTS_SQL = """
CREATE OR REPLACE TEMP TABLE partner_outcomes AS
SELECT l.*,
       coalesce(l.partner_id || coalesce(' ' || p.name, ''), 'unknown') AS partner,
       coalesce(o.relationship, 'unknown') AS relationship,
       CASE WHEN l.warmth_score IS NULL THEN 'unknown'
            WHEN l.warmth_score < 40 THEN 'under 40'
            WHEN l.warmth_score < 70 THEN '40-69'
            ELSE '70+' END AS warmth_band,
       coalesce(w.answer, 'no answer') AS partner_answer,
       CASE WHEN l.origin = 'doorstep' THEN coalesce(r.reason, 'not rejected') END
           AS rejection_reason
FROM lead_outcomes l
LEFT JOIN partner_names p ON p.partner_id = l.partner_id
LEFT JOIN partner_overlaps o ON o.account_id = l.account_id AND o.partner_id = l.partner_id
                            AND o.partner_account_id = l.partner_account_id
LEFT JOIN latest_answers w ON w.partner_id = l.partner_id
                          AND w.partner_account_id = l.partner_account_id
LEFT JOIN latest_rejections r ON l.origin = 'doorstep' AND r.lead_id = l.lead_id
WHERE l.lead_type IN ('eql', 'candidate');

CREATE OR REPLACE TEMP TABLE segment_outcomes AS
SELECT l.*,
       CASE WHEN a.employees IS NULL THEN 'unknown'
            WHEN a.employees < 50 THEN '1-49'
            WHEN a.employees < 200 THEN '50-199'
            WHEN a.employees < 1000 THEN '200-999'
            WHEN a.employees < 5000 THEN '1000-4999'
            ELSE '5000+' END AS employees,
       coalesce(nullif(lower(trim(a.industry)), ''), 'unknown') AS industry,
       coalesce(nullif(upper(trim(a.country)), ''), 'unknown') AS country
FROM lead_outcomes l
LEFT JOIN account_facts a ON a.account_id = l.account_id
WHERE l.lead_type IN ('eql', 'mql') AND l.state = 'measured';
"""


# --- counting --------------------------------------------------------------------------------

_COUNTS_SQL = """
SELECT {group} AS label, lead_type,
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


def _counts(
    con: duckdb.DuckDBPyConnection,
    group: str,
    where: str = "true",
    counted: str = _MEASURED,
    source: str = "lead_outcomes",
) -> list[_Counts]:
    sql = _COUNTS_SQL.format(group=group, where=where, counted=counted, source=source)
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


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _verdict_sentence(
    eql: Conversion,
    mql: Conversion,
    ratio: RateRatio | None,
    p: float | None,
    significant: bool,
    needed: dict[str, int] | None,
    method: str | None,
) -> str:
    head = (
        f"EQLs convert at {_pct(eql.rate)} ({eql.opportunities} of {eql.measured}, "
        f"95% CI {_pct(eql.ci_low)}-{_pct(eql.ci_high)}) vs MQLs at {_pct(mql.rate)} "
        f"({mql.opportunities} of {mql.measured}, 95% CI {_pct(mql.ci_low)}-{_pct(mql.ci_high)})"
    )
    if ratio is not None:
        head += f": {ratio.ratio:.2f}x (95% CI {ratio.ci_low:.2f}-{ratio.ci_high:.2f})"
    test = "Fisher's exact test" if method == "fisher" else "two-proportion z-test"
    if p is None:
        return head + "."
    if significant:
        return f"{head}; {_p_text(p)} ({test}): a real difference."
    tail = f"{head}; {_p_text(p)} ({test}): not significant yet"
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
    days = np.arange(window_days + 1)
    for lead_type in sorted(types, key=_type_order):
        data = con.execute(sql, {"lead_type": lead_type}).fetchnumpy()
        events = np.asarray(data["event"], dtype=bool)
        curve = kaplan_meier(np.asarray(data["duration"], dtype=np.float64), events)
        at = [curve.conversion_at(float(d)) for d in days]
        curves[lead_type] = TimeToOpportunity(
            lead_type=lead_type,
            subjects=curve.subjects,
            events=int(events.sum()),
            days=days.tolist(),
            conversion=[a[0] for a in at],
            ci_low=[a[1] for a in at],
            ci_high=[a[2] for a in at],
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
) -> Breakdown:
    if not types:
        return Breakdown(name, BREAKDOWNS[name], "all MQLs", [])
    type_list = ", ".join(_sql_text(t) for t in types)
    scope = f"({where}) AND lead_type IN ({type_list})"
    if compare_in_segment:
        scope = f"({where}) AND lead_type IN ({type_list}, {_sql_text(MQL)})"
    counts = [
        replace(c, label=label(c.label)) for c in _counts(con, column, scope, counted, source)
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
        "origin": _breakdown(con, "origin", "origin", [EQL], mql_rate),
        "partner": _breakdown(
            con, "partner", "partner", partner_types, mql_rate, where="partner_id IS NOT NULL",
            source=PARTNER_OUTCOMES,
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


# The qualify funnel's steps and the gate each one passes; read from the leads table here rather
# than imported, so the report keeps working while the qualify stage changes.
FUNNEL_STEPS = (("overlap", "overlap"), ("warm", "warmth"), ("fit", "fit"), ("motion", "motion"))


def qualify_funnel(con: duckdb.DuckDBPyConnection, origin: Breakdown) -> list[FunnelRow]:
    """Doorstep leads still in after each gate, then EQLs with their conversion vs MQL."""
    groups = con.execute(
        "SELECT status, coalesce(failed_gates, ''), count(*) FROM ds_leads GROUP BY ALL"
    ).fetchall()
    if not groups:
        return []
    counts = dict.fromkeys([step for step, _ in FUNNEL_STEPS] + [EQL], 0)
    for status, failed_gates, n in groups:
        failed = set(str(failed_gates).split(";")) - {""}
        passed = True
        for step, gate in FUNNEL_STEPS:
            passed = passed and gate not in failed
            counts[step] += n if passed else 0
        if passed and status not in CANDIDATE_STATUSES:
            counts[EQL] += n
    doorstep = next((r for r in origin.rows if r.label == DOORSTEP), None)
    rows: list[FunnelRow] = []
    previous: int | None = None
    for step, count in counts.items():
        lost = 0 if previous is None else previous - count
        share = round(lost / previous, 4) if previous else 0.0
        rows.append(FunnelRow(step, count, lost, share, doorstep if step == EQL else None))
        previous = count
    return rows


def _naive_utc(moment: datetime | None) -> datetime:
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


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
            f"{no_account} leads have no account_id and are left out of every rate: nothing but "
            "a named opportunity could be attributed to them."
        )
    return notes


def build_report(workspace: Workspace, *, now: datetime | None = None) -> Report:
    """Measure conversion per lead type, EQL vs MQL, breakdowns and fair comparisons."""
    moment = _naive_utc(now)
    measure = workspace.config.measure
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    try:
        _load_store(workspace, con, measure.holdout_share)
        con.execute(_LEADS_SQL)
        attribute_opportunities(con, window_days=measure.window_days, now=moment)
        con.execute(_SEGMENTS_SQL)
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


def _clean(value: Any) -> Any:
    """Floats rounded for reading, NaN and infinity as null."""
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return value


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
    return (
        f"{eql.leads} EQLs ({eql.measured} measured, {eql.open} open) convert at "
        f"{_pct(eql.rate)} vs MQLs at {_pct(mql.rate if mql else None)}. {verdict.sentence}"
    )


# --- text ----------------------------------------------------------------------------------------


def _ratio(value: float | None) -> str:
    return "n/a vs MQL" if value is None else f"{value:.2f}x MQL"


def _interval(low: float | None, high: float | None) -> str:
    return "n/a" if low is None or high is None else f"{_pct(low)}-{_pct(high)}"


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
        km = _pct(curve.at_window[0]) if curve else "n/a"
        conversion.add_row(
            c.lead_type, str(c.leads), str(c.open), str(c.influenced), str(c.no_account),
            str(c.measured), str(c.opportunities), _pct(c.rate), _interval(c.ci_low, c.ci_high),
            _ratio(c.rate_ratio_vs_mql),
        )
        outcomes.add_row(
            c.lead_type, _pct(c.rate), _ratio(c.rate_ratio_vs_mql), str(c.won), _pct(c.win_rate),
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
            c.label, c.lead_type, str(c.leads), str(c.open), str(c.measured),
            str(c.opportunities), _pct(c.rate), _interval(c.ci_low, c.ci_high),
            _ratio(c.rate_ratio_vs_mql),
        )
    return table


def fair_caption(comparison: FairComparison, verdict: Verdict) -> str:
    """The segment-adjusted EQL/MQL ratio beside the crude one and the rates behind it."""
    adjusted = comparison.adjusted
    ratio = (
        f"{adjusted.ratio:.2f}x MQL (95% CI {adjusted.ci_low:.2f}-{adjusted.ci_high:.2f})"
        if adjusted
        else "n/a vs MQL (no segment has both measured EQLs and MQLs)"
    )
    eql_rate = verdict.eql.rate if verdict.eql else None
    mql_rate = verdict.mql.rate if verdict.mql else None
    crude = f"{verdict.rate_ratio:.2f}x" if verdict.rate_ratio is not None else "n/a"
    return (
        f"Mantel-Haenszel EQL/MQL adjusted for {comparison.dimension}: {ratio}, over "
        f"{comparison.strata_used} segments with both; crude {crude} (EQL {_pct(eql_rate)} vs "
        f"MQL {_pct(mql_rate)})."
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
            r.segment, str(r.eql.measured), str(r.eql.opportunities), _pct(r.eql.rate),
            _interval(r.eql.ci_low, r.eql.ci_high), str(r.mql.measured),
            str(r.mql.opportunities), _pct(r.mql.rate), _ratio(r.rate_ratio),
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
    for curve in report.time_to_opportunity.values():
        at_window, low, high = curve.at_window
        mql_at = mql_curve.at_window[0] if mql_curve else None
        table.add_row(
            curve.lead_type, str(curve.subjects), str(curve.events),
            *[_pct(curve.conversion[d]) for d in marks], _interval(low, high),
            _ratio(at_window / mql_at if mql_at else None),
        )
    return table


def _funnel_table(report: Report) -> Table:
    table = _table(
        "Qualify funnel (doorstep leads)", ["step", "leads", "lost", "share lost", "conversion"]
    )
    for s in report.funnel:
        conversion = ""
        if s.step == EQL:
            c = s.conversion
            conversion = (
                f"{_pct(c.rate)} ({c.opportunities} of {c.measured} measured, {c.open} open), "
                f"{_ratio(c.rate_ratio_vs_mql)} at {_pct(c.mql_rate)}"
                if c
                else f"n/a (none measured yet), {_ratio(None)}"
            )
        table.add_row(s.step, str(s.count), str(s.lost), _pct(s.share_lost), conversion)
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
            f"{h.lift.ratio:.2f}x (95% CI {h.lift.ci_low:.2f}-{h.lift.ci_high:.2f})"
            if h.lift
            else "n/a"
        )
        p = _p_text(h.p_value) if h.p_value is not None else "no test yet"
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
