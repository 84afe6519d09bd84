"""Relative lift, mean_B / mean_A - 1, with a delta-method interval on the ratio scale.

With R = m_B / m_A for independent groups, the delta method gives
Var(R) ≈ Var(m_B) / m_A² + m_B² · Var(m_A) / m_A⁴, and the interval is
R - 1 ± z_{1-alpha/2} · √Var(R) (a normal quantile; symmetric around the lift). The variance of a
group's mean is p(1 - p)/n for a proportion and s²/n (n - 1 in s²) for a mean.

A control mean of 0 has no relative lift: every field is NaN.
"""

from __future__ import annotations

import math

import numpy.typing as npt
from scipy import stats

from modelport.experiments.analysis.checks import open_unit, sample, successes_of
from modelport.experiments.analysis.interval import NAN, Interval


def relative_lift(a: npt.ArrayLike, b: npt.ArrayLike, *, alpha: float = 0.05) -> Interval:
    """mean(b) / mean(a) - 1 of two samples of a metric (two finite values per group)."""
    alpha = open_unit(alpha, "alpha")
    values_a, values_b = sample(a, "a"), sample(b, "b")
    return lift_of(
        float(values_a.mean()),
        float(values_a.var(ddof=1)) / values_a.size,
        float(values_b.mean()),
        float(values_b.var(ddof=1)) / values_b.size,
        alpha,
    )


def proportions_lift(
    successes_a: int, n_a: int, successes_b: int, n_b: int, *, alpha: float = 0.05
) -> Interval:
    """p_b / p_a - 1 of two rates given as successes out of units."""
    alpha = open_unit(alpha, "alpha")
    x_a, units_a = successes_of(successes_a, n_a, "a")
    x_b, units_b = successes_of(successes_b, n_b, "b")
    p_a, p_b = x_a / units_a, x_b / units_b
    return lift_of(p_a, p_a * (1 - p_a) / units_a, p_b, p_b * (1 - p_b) / units_b, alpha)


def lift_of(
    mean_a: float, var_mean_a: float, mean_b: float, var_mean_b: float, alpha: float
) -> Interval:
    """The lift and its delta-method interval from each group's mean and that mean's variance."""
    if mean_a == 0.0:
        return Interval(NAN, NAN, NAN)
    ratio = mean_b / mean_a
    # (Var(m_B) + R² Var(m_A)) / m_A², divided step by step: tiny means give inf, not an error
    variance = (var_mean_b + ratio * ratio * var_mean_a) / mean_a / mean_a
    half = float(stats.norm.ppf(1.0 - alpha / 2.0)) * math.sqrt(variance)
    return Interval(ratio - 1.0, ratio - 1.0 - half, ratio - 1.0 + half)
