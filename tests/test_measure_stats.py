"""Statistics for measuring conversion: hand-computed values on small counts, statsmodels and
scipy on larger ones."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as scipy_stats
import statsmodels.duration.survfunc as sm_survival
import statsmodels.stats.contingency_tables as sm_tables
import statsmodels.stats.proportion as sm_proportion
from hypothesis import given
from hypothesis import strategies as st

from doorstep.measure.stats import (
    kaplan_meier,
    leads_needed,
    mantel_haenszel_rate_ratio,
    rate_ratio,
    sample_size_two_proportions,
    two_proportion_test,
    wilson_interval,
    z_value,
)


def test_z_value_is_1_96_at_95_percent() -> None:
    assert z_value(0.95) == pytest.approx(1.959964, abs=1e-6)


# --- Wilson interval -------------------------------------------------------------------------


def test_wilson_interval_of_8_in_20_by_hand() -> None:
    # centre (0.4 + z²/40) / (1 + z²/20) = 0.416112; half-width 0.197306
    low, high = wilson_interval(8, 20)  # type: ignore[misc]
    assert low == pytest.approx(0.218807, abs=1e-6)
    assert high == pytest.approx(0.613418, abs=1e-6)


def test_wilson_interval_of_no_successes_starts_at_exactly_zero() -> None:
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.277533, abs=1e-6))
    assert wilson_interval(10, 10) == (pytest.approx(1 - 0.277533, abs=1e-6), 1.0)


def test_wilson_interval_without_trials_is_none() -> None:
    assert wilson_interval(0, 0) is None


def test_wilson_interval_refuses_more_successes_than_trials() -> None:
    with pytest.raises(ValueError, match="between 0 and trials"):
        wilson_interval(5, 4)


@pytest.mark.parametrize(("x", "n"), [(67, 201), (81, 958), (3, 4000), (999, 1000)])
def test_wilson_interval_matches_statsmodels(x: int, n: int) -> None:
    expected = sm_proportion.proportion_confint(x, n, alpha=0.05, method="wilson")
    assert wilson_interval(x, n) == pytest.approx(expected, abs=1e-12)


@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_interval_holds_the_observed_rate_inside_zero_one(pair: tuple[int, int]) -> None:
    x, n = pair
    low, high = wilson_interval(x, n)  # type: ignore[misc]
    assert 0.0 <= low <= x / n <= high <= 1.0


# --- rate ratio ----------------------------------------------------------------------------


def test_rate_ratio_log_method_by_hand() -> None:
    # 20/100 vs 10/100: ratio 2, se(log) = sqrt(1/20 - 1/100 + 1/10 - 1/100) = sqrt(0.13)
    result = rate_ratio(20, 100, 10, 100)
    assert result is not None
    assert result.ratio == pytest.approx(2.0)
    spread = math.exp(1.959964 * math.sqrt(0.13))
    assert result.ci_low == pytest.approx(2 / spread, rel=1e-6)
    assert result.ci_high == pytest.approx(2 * spread, rel=1e-6)
    assert not result.corrected


def test_rate_ratio_with_a_zero_count_adds_a_half_to_every_cell() -> None:
    result = rate_ratio(0, 50, 5, 100)
    assert result is not None and result.corrected
    assert result.ratio == pytest.approx((0.5 / 51) / (5.5 / 101))
    assert 0 < result.ci_low < result.ratio < result.ci_high


def test_rate_ratio_without_trials_is_none() -> None:
    assert rate_ratio(0, 0, 3, 10) is None
    assert rate_ratio(3, 10, 0, 0) is None


# --- tests of two proportions -------------------------------------------------------------


def test_two_proportion_z_test_by_hand() -> None:
    # pooled 0.15, se = sqrt(0.15 * 0.85 * 0.02), z = 0.1 / se = 1.980295
    test = two_proportion_test(20, 100, 10, 100)
    assert test is not None and test.method == "z"
    assert test.statistic == pytest.approx(1.980295, abs=1e-6)
    assert test.p_value == pytest.approx(0.047670, abs=1e-6)


@pytest.mark.parametrize(("a", "n1", "c", "n2"), [(67, 201, 81, 958), (30, 400, 36, 410)])
def test_two_proportion_z_test_matches_statsmodels(a: int, n1: int, c: int, n2: int) -> None:
    test = two_proportion_test(a, n1, c, n2)
    z, p = sm_proportion.proportions_ztest([a, c], [n1, n2])
    assert test is not None and test.method == "z"
    assert test.statistic == pytest.approx(float(z), rel=1e-9)
    assert test.p_value == pytest.approx(float(p), rel=1e-9)


def test_small_expected_counts_use_fishers_exact_test_by_hand() -> None:
    # 3 of 10 vs 0 of 10: expected converted per group 1.5 < 5. All three converters fall in
    # one group with probability C(10,3)/C(20,3) = 120/1140 each way: p = 240/1140.
    test = two_proportion_test(3, 10, 0, 10)
    assert test is not None and test.method == "fisher"
    assert test.p_value == pytest.approx(240 / 1140, rel=1e-9)


def test_fishers_exact_test_matches_scipy_when_one_expected_cell_is_small() -> None:
    # expected converted in the small group: 50 * 12 / 2050 = 0.29 < 5
    test = two_proportion_test(4, 50, 8, 2000)
    _, p = scipy_stats.fisher_exact([[4, 46], [8, 1992]])
    assert test is not None and test.method == "fisher"
    assert test.p_value == pytest.approx(float(p), rel=1e-9)


# --- sample size ---------------------------------------------------------------------------


def test_sample_size_for_10_vs_20_percent_is_199_per_group() -> None:
    # ((1.96 * sqrt(2 * 0.15 * 0.85) + 0.8416 * sqrt(0.16 + 0.09)) / 0.1)² = 198.96
    assert sample_size_two_proportions(0.2, 0.1) == pytest.approx(198.963, abs=1e-3)


@pytest.mark.parametrize(
    ("p1", "p2", "ratio"), [(0.3, 0.08, 4.7), (0.05, 0.07, 1.0), (0.5, 0.4, 0.3)]
)
def test_sample_size_matches_statsmodels(p1: float, p2: float, ratio: float) -> None:
    expected = sm_proportion.samplesize_proportions_2indep_onetail(
        p1 - p2, p2, 0.8, ratio=ratio, alpha=0.05
    )
    assert sample_size_two_proportions(p1, p2, ratio=ratio) == pytest.approx(expected, rel=1e-9)


def test_equal_rates_need_no_sample_size_because_none_separates_them() -> None:
    assert sample_size_two_proportions(0.1, 0.1) is None
    assert leads_needed(10, 100, 20, 200) is None


def test_leads_needed_are_the_missing_leads_at_the_current_mix() -> None:
    # 20% of 100 vs 10% of 100 needs 199 per group: 99 more of each
    assert leads_needed(20, 100, 10, 100) == (99, 99)


def test_leads_needed_is_zero_for_a_group_that_already_has_enough() -> None:
    more = leads_needed(2, 10, 100, 1000)
    assert more is not None
    needed = sample_size_two_proportions(0.2, 0.1, ratio=100)
    assert needed is not None
    assert more == (math.ceil(needed) - 10, max(0, math.ceil(needed * 100) - 1000))
    assert more[0] > 0


# --- Mantel–Haenszel ------------------------------------------------------------------------


def test_mantel_haenszel_rate_ratio_by_hand() -> None:
    # R = 10*50/100 + 20*60/100 = 17, S = 5*50/100 + 15*40/100 = 8.5, ratio 2;
    # Greenland-Robins variance (3.25 + 5.4) / (17 * 8.5)
    result = mantel_haenszel_rate_ratio([(10, 50, 5, 50), (20, 40, 15, 60)])
    assert result is not None
    assert result.ratio == pytest.approx(2.0)
    spread = math.exp(1.959964 * math.sqrt(8.65 / 144.5))
    assert result.ci_low == pytest.approx(2 / spread, rel=1e-6)
    assert result.ci_high == pytest.approx(2 * spread, rel=1e-6)


def test_mantel_haenszel_of_one_stratum_is_the_plain_rate_ratio() -> None:
    pooled = mantel_haenszel_rate_ratio([(20, 100, 10, 100)])
    plain = rate_ratio(20, 100, 10, 100)
    assert pooled is not None and plain is not None
    assert (pooled.ratio, pooled.ci_low, pooled.ci_high) == pytest.approx(
        (plain.ratio, plain.ci_low, plain.ci_high)
    )


def test_mantel_haenszel_matches_statsmodels_on_many_strata() -> None:
    rng = np.random.default_rng(3)
    strata = []
    for _ in range(40):
        n1, n2 = int(rng.integers(5, 300)), int(rng.integers(5, 300))
        p = rng.uniform(0.02, 0.2)
        strata.append((int(rng.binomial(n1, min(1, 3 * p))), n1, int(rng.binomial(n2, p)), n2))
    tables = [np.array([[a, n1 - a], [c, n2 - c]]) for a, n1, c, n2 in strata]
    expected = sm_tables.StratifiedTable(tables).riskratio_pooled
    result = mantel_haenszel_rate_ratio(strata)
    assert result is not None
    assert result.ratio == pytest.approx(float(expected), rel=1e-9)
    assert result.ci_low < result.ratio < result.ci_high


def test_mantel_haenszel_skips_strata_without_both_groups() -> None:
    with_empty = mantel_haenszel_rate_ratio([(10, 50, 5, 50), (3, 9, 0, 0), (0, 0, 4, 30)])
    alone = mantel_haenszel_rate_ratio([(10, 50, 5, 50)])
    assert with_empty == alone


def test_mantel_haenszel_without_any_converted_is_none() -> None:
    assert mantel_haenszel_rate_ratio([(0, 50, 0, 50)]) is None
    assert mantel_haenszel_rate_ratio([]) is None


# --- Kaplan–Meier ---------------------------------------------------------------------------


def test_kaplan_meier_by_hand() -> None:
    # at risk 6, 5, 3, 1 at the event times 1, 2, 3, 5; one leaves censored at 2 and at 4
    curve = kaplan_meier([1, 2, 2, 3, 4, 5], [1, 1, 0, 1, 0, 1])
    assert curve.times.tolist() == [0, 1, 2, 3, 5]
    assert curve.survival.tolist() == pytest.approx([1, 5 / 6, 4 / 6, 4 / 6 * 2 / 3, 0])
    assert curve.at_risk.tolist() == [6, 6, 5, 3, 1]
    assert curve.survival_at(2.5)[0] == pytest.approx(4 / 6)
    assert curve.conversion_at(4.9)[0] == pytest.approx(1 - 8 / 18)
    # log(-log) interval at t = 1: S^exp(±z sqrt(1/30) / |log S|)
    spread = 1.959964 * math.sqrt(1 / 30) / abs(math.log(5 / 6))
    assert curve.ci_low[1] == pytest.approx((5 / 6) ** math.exp(spread), rel=1e-5)
    assert curve.ci_high[1] == pytest.approx((5 / 6) ** math.exp(-spread), rel=1e-5)


def test_kaplan_meier_matches_statsmodels_with_censoring() -> None:
    rng = np.random.default_rng(11)
    n = 2000
    durations = np.round(rng.exponential(40, n), 1)
    observed = rng.random(n) < 0.6
    curve = kaplan_meier(durations, observed)
    reference = sm_survival.SurvfuncRight(durations, observed.astype(int))
    assert curve.times[1:] == pytest.approx(reference.surv_times)
    assert curve.survival[1:] == pytest.approx(reference.surv_prob, rel=1e-9)
    # Greenwood: se(S) = S * sqrt(sum d / (n (n - d)))
    with np.errstate(divide="ignore", invalid="ignore"):  # the last lead at risk converts
        ours_se = curve.survival * np.sqrt(
            np.cumsum(curve.events / (curve.at_risk * (curve.at_risk - curve.events)))
        )
    finite = np.isfinite(reference.surv_prob_se)
    assert finite.sum() > 100
    assert ours_se[1:][finite] == pytest.approx(reference.surv_prob_se[finite], rel=1e-9)


def test_kaplan_meier_without_censoring_is_the_empirical_distribution() -> None:
    curve = kaplan_meier([3, 1, 2, 2], [1, 1, 1, 1])
    assert curve.conversion_at(2)[0] == pytest.approx(0.75)
    assert curve.conversion_at(0.5)[0] == 0.0


def test_kaplan_meier_refuses_negative_durations() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        kaplan_meier([1, -2], [1, 0])
