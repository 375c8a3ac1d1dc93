"""cluster.stats against independent computations: scipy's Wilson interval and binomial tail, and hand enumeration."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from cluster.stats import bootstrap_interval, mcnemar_exact, wilson


@pytest.mark.parametrize("successes,n", [(0, 10), (10, 10), (3, 17), (1, 1), (500, 1000), (999_999, 1_000_000)])
@pytest.mark.parametrize("level", [0.8, 0.95, 0.999])
def test_wilson_matches_scipys_proportion_ci(successes, n, level):
    expected = scipy_stats.binomtest(successes, n).proportion_ci(level, method="wilson")
    assert wilson(successes, n, level) == pytest.approx((expected.low, expected.high), rel=1e-12, abs=1e-15)


def test_wilson_keeps_a_positive_width_at_no_successes_and_at_all_successes():
    assert wilson(0, 20, 0.95)[0] == 0.0 and wilson(0, 20, 0.95)[1] > 0.1
    assert wilson(20, 20, 0.95)[1] == 1.0 and wilson(20, 20, 0.95)[0] < 0.9


def test_wilson_of_no_rows_is_undefined():
    assert all(math.isnan(end) for end in wilson(0, 0, 0.95))


@pytest.mark.parametrize("b,c", [(3, 5), (0, 7), (10, 30), (120, 80), (4000, 4400), (1_000_000, 1_003_000)])
def test_mcnemar_exact_is_twice_the_binomial_tail_of_the_smaller_count(b, c):
    expected = min(1.0, 2 * scipy_stats.binom.cdf(min(b, c), b + c, 0.5))
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-8)
    assert mcnemar_exact(b, c) == pytest.approx(scipy_stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-8)


@pytest.mark.parametrize("b,c", [(0, 1), (2, 9), (6, 7), (13, 2)])
def test_mcnemar_exact_matches_a_hand_enumeration_of_the_binomial(b, c):
    n = b + c
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2 ** n
    assert mcnemar_exact(b, c) == pytest.approx(min(1.0, 2 * tail), rel=1e-12)


@pytest.mark.parametrize("b,c", [(0, 0), (5, 5), (40, 41)])
def test_mcnemar_exact_is_one_when_the_discordant_counts_balance_or_are_absent(b, c):
    assert mcnemar_exact(b, c) == 1.0


def test_bootstrap_interval_is_the_percentiles_of_the_replicates():
    estimates = np.random.default_rng(0).normal(size=999)
    assert bootstrap_interval(estimates, 0.9) == pytest.approx(tuple(np.percentile(estimates, [5, 95])))


def test_bootstrap_interval_leaves_out_replicates_where_the_estimate_is_undefined():
    estimates = np.array([np.nan, 1.0, 2.0, 3.0, np.nan])
    assert bootstrap_interval(estimates, 0.5) == pytest.approx((1.5, 2.5))
    assert all(math.isnan(end) for end in bootstrap_interval(np.full(4, np.nan), 0.5))


@pytest.mark.parametrize("level", [0, 1, 95])
def test_a_level_outside_zero_and_one_is_refused(level):
    with pytest.raises(ValueError, match="between 0 and 1"):
        wilson(1, 2, level)
