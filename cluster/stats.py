"""Intervals and tests on a run's merged results: Wilson, McNemar's exact test, the bootstrap percentile interval.

Pure Python and numpy: scipy is only the tests' oracle. The sums they start from are made by
cluster.bootstrap and cluster.calibration.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np


def _z(level: float) -> float:
    """The standard normal quantile of a two-sided interval at `level`."""
    if not 0 < level < 1:
        raise ValueError(f"an interval's level must be between 0 and 1, got {level}")
    return NormalDist().inv_cdf(0.5 + level / 2)


def wilson(successes: int, n: int, level: float) -> tuple[float, float]:
    """The Wilson score interval of a proportion (Newcombe 1998, as scipy's proportion_ci(method='wilson'))."""
    if n == 0:
        return math.nan, math.nan
    z, p = _z(level), successes / n
    denominator = 2 * (n + z * z)
    center = (2 * n * p + z * z) / denominator
    delta = z / denominator * math.sqrt(4 * n * p * (1 - p) + z * z)
    # Exact ends at 0% and 100% (center - delta is 0 there up to rounding), and still an interval of positive width.
    return (0.0 if successes == 0 else center - delta), (1.0 if successes == n else center + delta)


def mcnemar_exact(b: int, c: int) -> float:
    """McNemar's exact two-sided p-value on the discordant counts: 2·P(X <= min(b, c)), X ~ Bin(b + c, 1/2), at most 1.

    As statsmodels' mcnemar(exact=True). The binomial tail is summed from its largest term down, in
    floating point from a log-gamma start, so millions of discordant rows cost milliseconds.
    """
    n, k = b + c, min(b, c)
    if 2 * k >= n:  # includes n == 0: the tail holds at least half the mass
        return 1.0
    log_top = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2)
    # pmf(i - 1) / pmf(i) = i / (n - i + 1) < 1 below the mode: terms fall at least geometrically.
    length = min(k, int(40 * math.sqrt(n)) + 100)
    i = np.arange(k, k - length, -1, dtype=np.float64)
    terms = np.concatenate(([1.0], np.cumprod(i / (n - i + 1))))
    return min(1.0, 2 * math.exp(log_top) * float(terms.sum()))


def bootstrap_interval(estimates: np.ndarray, level: float) -> tuple[float, float]:
    """The percentile interval of bootstrap replicates' estimates (replicates where it is undefined, nan, left out)."""
    _z(level)  # checks the level
    values = np.asarray(estimates, np.float64)
    values = values[~np.isnan(values)]
    if not len(values):
        return math.nan, math.nan
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
