"""Pure statistics for measuring conversion: intervals, tests, sample sizes, survival curves.

Every function takes counts (or arrays) and returns numbers; nothing here reads the store.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

CONFIDENCE = 0.95
ALPHA = 0.05
POWER = 0.8
FISHER_BELOW = 5  # Fisher's exact test when any expected cell count is below this


def z_value(confidence: float = CONFIDENCE) -> float:
    """The two-sided standard normal quantile for a confidence level (1.96 for 95%)."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(
    successes: int, trials: int, confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion; None without trials."""
    if trials <= 0:
        return None
    if not 0 <= successes <= trials:
        raise ValueError(f"successes {successes} must lie between 0 and trials {trials}")
    z = z_value(confidence)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class RateRatio:
    """A ratio of two rates with its confidence interval; `corrected` when a zero count forced
    adding 0.5 to every cell (Haldane) to keep the ratio and its interval finite."""

    ratio: float
    ci_low: float
    ci_high: float
    corrected: bool = False


def _log_interval(ratio: float, se: float, confidence: float) -> tuple[float, float]:
    z = z_value(confidence)
    return ratio * math.exp(-z * se), ratio * math.exp(z * se)


def rate_ratio(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int,
    confidence: float = CONFIDENCE,
) -> RateRatio | None:
    """The ratio of rate a to rate b with a log-method (Katz) interval; None without trials."""
    if trials_a <= 0 or trials_b <= 0:
        return None
    a, n1, c, n2 = float(successes_a), float(trials_a), float(successes_b), float(trials_b)
    corrected = successes_a == 0 or successes_b == 0
    if corrected:
        a, n1, c, n2 = a + 0.5, n1 + 1, c + 0.5, n2 + 1
    ratio = (a / n1) / (c / n2)
    se = math.sqrt(max(0.0, 1 / a - 1 / n1 + 1 / c - 1 / n2))
    low, high = _log_interval(ratio, se, confidence)
    return RateRatio(ratio, low, high, corrected)


@dataclass(frozen=True)
class ProportionTest:
    """A two-sided test that two proportions are equal: which test ran, and its p-value."""

    method: str  # "z" (two-proportion z-test, pooled) or "fisher" (Fisher's exact test)
    p_value: float
    statistic: float | None = None  # z for the z-test, the sample odds ratio for Fisher


def two_proportion_test(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int
) -> ProportionTest | None:
    """Two-proportion z-test, or Fisher's exact test when an expected cell is below 5."""
    if trials_a <= 0 or trials_b <= 0:
        return None
    total = trials_a + trials_b
    converted = successes_a + successes_b
    expected = [
        rows * cols / total
        for rows in (trials_a, trials_b)
        for cols in (converted, total - converted)
    ]
    if min(expected) < FISHER_BELOW:
        from scipy.stats import fisher_exact  # scipy is slow to import; only small counts need it

        table = [[successes_a, trials_a - successes_a], [successes_b, trials_b - successes_b]]
        odds, p = fisher_exact(table, alternative="two-sided")
        return ProportionTest("fisher", min(1.0, float(p)), float(odds))
    pooled = converted / total
    se = math.sqrt(pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b))
    z = (successes_a / trials_a - successes_b / trials_b) / se
    return ProportionTest("z", math.erfc(abs(z) / math.sqrt(2)), z)


def sample_size_two_proportions(
    rate_a: float, rate_b: float, *, ratio: float = 1.0, power: float = POWER,
    alpha: float = ALPHA,
) -> float | None:
    """Trials group a needs (group b: `ratio` times as many) for a two-sided z-test to reach
    `power` at these true rates; None when the rates are equal, so no size tells them apart."""
    diff = rate_a - rate_b
    if diff == 0 or ratio <= 0:
        return None
    pooled = (rate_a + ratio * rate_b) / (1 + ratio)
    sd_null = math.sqrt(pooled * (1 - pooled) * (1 + 1 / ratio))
    sd_alt = math.sqrt(rate_a * (1 - rate_a) + rate_b * (1 - rate_b) / ratio)
    normal = NormalDist()
    crit = normal.inv_cdf(1 - alpha / 2)
    crit_power = normal.inv_cdf(power)
    return (max(crit * sd_null + crit_power * sd_alt, 0.0) / diff) ** 2


def leads_needed(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int, *, power: float = POWER,
    alpha: float = ALPHA,
) -> tuple[int, int] | None:
    """More measured leads groups a and b need, at their current mix and observed rates, for a
    test with this power; None when the observed rates are equal or a group is empty."""
    if trials_a <= 0 or trials_b <= 0:
        return None
    ratio = trials_b / trials_a
    needed = sample_size_two_proportions(
        successes_a / trials_a, successes_b / trials_b, ratio=ratio, power=power, alpha=alpha
    )
    if needed is None:
        return None
    return max(0, math.ceil(needed) - trials_a), max(0, math.ceil(needed * ratio) - trials_b)


Stratum = tuple[int, int, int, int]  # successes a, trials a, successes b, trials b


def mantel_haenszel_rate_ratio(
    strata: Iterable[Stratum], confidence: float = CONFIDENCE
) -> RateRatio | None:
    """The Mantel–Haenszel rate ratio of a to b pooled over strata, with the Greenland–Robins
    interval; strata lacking either group carry no information and are skipped."""
    numerator = denominator = variance_sum = 0.0
    for a, n1, c, n2 in strata:
        if n1 <= 0 or n2 <= 0:
            continue
        total = n1 + n2
        numerator += a * n2 / total
        denominator += c * n1 / total
        variance_sum += (n1 * n2 * (a + c) - a * c * total) / (total * total)
    if numerator <= 0 or denominator <= 0:
        return None
    ratio = numerator / denominator
    se = math.sqrt(max(0.0, variance_sum / (numerator * denominator)))
    low, high = _log_interval(ratio, se, confidence)
    return RateRatio(ratio, low, high)


FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SurvivalCurve:
    """A Kaplan–Meier curve: at each event time, the share still without an opportunity.

    `times` starts at 0 (survival 1); `ci_low`/`ci_high` are pointwise log(-log) intervals.
    """

    times: FloatArray
    survival: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    at_risk: npt.NDArray[np.int64]
    events: npt.NDArray[np.int64]
    subjects: int

    def survival_at(self, t: float) -> tuple[float, float, float]:
        """Survival and its interval at time t (the step function's value just after t)."""
        i = int(np.searchsorted(self.times, t, side="right")) - 1
        return float(self.survival[i]), float(self.ci_low[i]), float(self.ci_high[i])

    def conversion_at(self, t: float) -> tuple[float, float, float]:
        """The share converted by time t, with its interval: one minus survival."""
        s, low, high = self.survival_at(t)
        return 1 - s, 1 - high, 1 - low


def kaplan_meier(
    durations: npt.ArrayLike, observed: npt.ArrayLike, confidence: float = CONFIDENCE
) -> SurvivalCurve:
    """The Kaplan–Meier estimate of time to event with right censoring (Greenwood variance)."""
    t = np.asarray(durations, dtype=np.float64)
    e = np.asarray(observed, dtype=bool)
    if t.shape != e.shape:
        raise ValueError("durations and observed must have the same length")
    if np.any(t < 0) or np.any(np.isnan(t)):
        raise ValueError("durations must be non-negative numbers")
    n = len(t)
    times, inverse = np.unique(t, return_inverse=True)
    leaving = np.bincount(inverse, minlength=len(times))
    events = np.bincount(inverse, weights=e.astype(np.float64), minlength=len(times))
    at_risk = n - np.concatenate([[0], np.cumsum(leaving)[:-1]])
    has_event = events > 0
    times, events, at_risk = times[has_event], events[has_event], at_risk[has_event]
    with np.errstate(divide="ignore", invalid="ignore"):
        survival = np.cumprod(1 - events / at_risk)
        greenwood = np.cumsum(events / (at_risk * (at_risk - events)))
        log_s = np.log(survival)
        spread = z_value(confidence) * np.sqrt(greenwood) / np.abs(log_s)
        low = survival ** np.exp(spread)
        high = survival ** np.exp(-spread)
    degenerate = (survival <= 0) | ~np.isfinite(spread)
    low = np.where(degenerate, survival, low)
    high = np.where(degenerate, survival, high)
    return SurvivalCurve(
        times=np.concatenate([[0.0], times]),
        survival=np.concatenate([[1.0], survival]),
        ci_low=np.concatenate([[1.0], low]),
        ci_high=np.concatenate([[1.0], high]),
        at_risk=np.concatenate([[n], at_risk]).astype(np.int64),
        events=np.concatenate([[0], events]).astype(np.int64),
        subjects=n,
    )
