"""The measurement report's data: what `doorstep report` shows, as typed values.

Computed in `measure.report`, rendered by `measure.text` (terminal), `measure.html` and the web
app; every surface reads these values and none recomputes them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from doorstep.lifecycle import FunnelStep
from doorstep.measure.stats import ALPHA, POWER, RateRatio

MQL = "mql"
CANDIDATE = "candidate"
DOORSTEP = "doorstep"
IMPORTED = "imported"
ORIGIN_LABELS = {IMPORTED: "imported history", DOORSTEP: "doorstep EQLs"}
# A Kaplan–Meier curve is drawn only while at least this many leads are still followed.
MIN_AT_RISK = 10

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
    partner_id: str | None = None  # the partner of a per-partner row, as data, never parsed
    origin: str | None = None  # imported (partner-sourced history) or doorstep, where split

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
    """A Kaplan–Meier curve of one lead type: the share with an opportunity by each day.

    The curve stops on the last day at least MIN_AT_RISK leads were still followed (`days`
    ends there); past it, the estimate rests on too few leads to draw.
    """

    lead_type: str
    subjects: int
    events: int
    days: list[int]
    conversion: list[float]
    ci_low: list[float]
    ci_high: list[float]
    at_risk: list[int]
    window_days: int

    @property
    def last_day(self) -> int | None:
        """The last day the curve is drawn to; None when it has no day with enough leads."""
        return self.days[-1] if self.days else None

    @property
    def reaches_window(self) -> bool:
        """Whether enough leads were followed to the end of the window to read the curve there."""
        return self.last_day is not None and self.last_day >= self.window_days

    @property
    def at_window(self) -> tuple[float, float, float] | None:
        """Conversion by the last day of the window with its interval; None when the curve
        stops before it."""
        if not self.reaches_window:
            return None
        return self.conversion[-1], self.ci_low[-1], self.ci_high[-1]

    def as_json(self, mql: TimeToOpportunity | None) -> dict[str, Any]:
        """The curve as JSON-ready values, beside MQLs' conversion by the end of the window."""
        at = self.at_window
        rate, low, high = at if at is not None else (None, None, None)
        mql_at = mql.at_window if mql is not None else None
        mql_rate = mql_at[0] if mql_at is not None else None
        return {
            "subjects": self.subjects,
            "events": self.events,
            "min_at_risk": MIN_AT_RISK,
            "last_day": self.last_day,
            "conversion_at_window": _clean(rate),
            "ci_low_at_window": _clean(low),
            "ci_high_at_window": _clean(high),
            "mql_conversion_at_window": _clean(mql_rate),
            "rate_ratio_vs_mql": _clean(rate / mql_rate if rate is not None and mql_rate
                                        else None),
            "days": self.days,
            "at_risk": self.at_risk,
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
class FunnelRow(FunnelStep):
    """One step of the qualify funnel; the EQL step carries doorstep EQLs' conversion."""

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


def _clean(value: Any) -> Any:
    """Floats rounded for reading, NaN and infinity as null."""
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return value
