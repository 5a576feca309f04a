"""How every surface writes a figure: percentages, ratios, intervals, p-values, EQL sentences.

One glyph for each: a percentage "12.3%", a ratio "2.10×", an interval "9.8%–14.1%". A rate is
never written without its numerator and denominator, and a group with no measured lead says
"too early" instead of showing 0%. The terminal, the HTML report, the web app, the digest and
the API's sentences all come from here.
"""

from __future__ import annotations

from typing import Protocol

RATIO = "×"
DASH = "–"
NA = "n/a"


class Rated(Protocol):
    """What a sentence about a group's conversion needs (a measure Conversion)."""

    @property
    def leads(self) -> int: ...

    @property
    def open(self) -> int: ...

    @property
    def measured(self) -> int: ...

    @property
    def opportunities(self) -> int: ...

    @property
    def rate(self) -> float | None: ...

    @property
    def ci_low(self) -> float | None: ...

    @property
    def ci_high(self) -> float | None: ...

    @property
    def rate_ratio_vs_mql(self) -> float | None: ...


def pct(value: float | None) -> str:
    """A share as a percentage with one decimal: "12.3%"; "n/a" when there is none."""
    return NA if value is None else f"{100 * value:.1f}%"


def times(value: float | None) -> str:
    """A ratio: "2.10×"; "n/a" when there is none."""
    return NA if value is None else f"{value:.2f}{RATIO}"


def ratio_vs_mql(value: float | None) -> str:
    """A rate ratio against MQLs: "2.10× MQL"."""
    return f"{NA} vs MQL" if value is None else f"{times(value)} MQL"


def interval(low: float | None, high: float | None) -> str:
    """A 95% interval of shares: "9.8%–14.1%"."""
    return NA if low is None or high is None else f"{pct(low)}{DASH}{pct(high)}"


def ratio_interval(low: float | None, high: float | None) -> str:
    """A 95% interval of ratios: "1.20–2.40"."""
    return NA if low is None or high is None else f"{low:.2f}{DASH}{high:.2f}"


def p_value(p: float) -> str:
    """A p-value as people read it: "p < 0.001" or "p = 0.042"."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def count(n: int, noun: str) -> str:
    """A count with its noun in the right number: "1 lead", "2,000 leads"."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def too_early(c: Rated) -> str:
    """What a group with no measured lead shows instead of a rate."""
    return f"too early: {c.open:,} open, none measured yet"


def rate_text(c: Rated) -> str:
    """A group's measured conversion with its interval and counts, or "too early: ..."."""
    if not c.measured:
        return too_early(c)
    return (
        f"{pct(c.rate)} [{interval(c.ci_low, c.ci_high)}] "
        f"({c.opportunities:,} of {c.measured:,} measured)"
    )


def eql_sentence(leads: int, c: Rated | None, mql_rate: float | None) -> str:
    """A count of EQLs, always beside their measured conversion and the MQL comparison."""
    mql = f"MQLs {pct(mql_rate)}"
    if c is None or not c.measured:
        opened = c.open if c is not None else leads
        return f"{count(leads, 'EQL')} · too early: {opened:,} open, none measured yet · {mql}"
    return (
        f"{count(leads, 'EQL')} · {rate_text(c)} converted · "
        f"{ratio_vs_mql(c.rate_ratio_vs_mql)} at {pct(mql_rate)}"
    )


def group_sentence(name: str, c: Rated) -> str:
    """One group of leads (any type) with its conversion and the MQL comparison."""
    if not c.measured:
        return f"{name}: {count(c.leads, 'lead')} · {too_early(c)}"
    return (
        f"{name}: {count(c.leads, 'lead')} · {rate_text(c)} · {ratio_vs_mql(c.rate_ratio_vs_mql)}"
    )


def rate_cell(c: Rated) -> str:
    """A rate in a table cell: the percentage, or "too early" for a group none of which is
    measured yet."""
    return pct(c.rate) if c.measured else "too early"


def ratio_with_interval(ratio: float | None, low: float | None, high: float | None) -> str:
    """A ratio with its 95% interval: "1.80× (95% CI 1.20–2.40)"; "n/a" when there is none."""
    if ratio is None:
        return NA
    return f"{times(ratio)} (95% CI {ratio_interval(low, high)})"
