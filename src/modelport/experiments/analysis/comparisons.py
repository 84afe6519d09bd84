"""Fixed-horizon comparisons of a treatment B with a control A: the two-proportion z-test and
Welch's t-test. Every difference is B - A and every test two-sided.

* Proportions: the statistic uses the pooled variance p(1 - p)(1/n_A + 1/n_B), p the pooled
  rate (the variance under "no difference"); the interval uses the unpooled (Wald) variance
  p_A(1 - p_A)/n_A + p_B(1 - p_B)/n_B. No continuity correction.
* Means: Welch's t-test, sample variances with n - 1, degrees of freedom by
  Welch-Satterthwaite (fractional); the interval takes the t quantile at those df.

When the variance the test divides by is 0 (both rates 0 or both 1; both samples constant)
there is no test: statistic, p-value, df and interval are NaN, the estimate stays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy.typing as npt
from scipy import stats

from modelport.experiments.analysis.checks import FloatArray, open_unit, sample, successes_of
from modelport.experiments.analysis.interval import NAN, JsonValue, json_float


@dataclass(frozen=True, slots=True)
class Comparison:
    """B - A with its interval and two-sided test."""

    estimate: float
    """mean_b - mean_a (a difference of rates for proportions)."""
    ci_low: float
    ci_high: float
    """The (1 - alpha) confidence interval of the estimate."""
    p_value: float
    statistic: float
    """z for proportions, t for means."""
    df: float | None
    """Welch-Satterthwaite degrees of freedom; None for the z-test."""
    mean_a: float
    mean_b: float
    n_a: int
    n_b: int
    alpha: float

    @property
    def significant(self) -> bool:
        """p < alpha (False when there is no test)."""
        return self.p_value < self.alpha

    def to_dict(self) -> dict[str, JsonValue]:
        return {
            "estimate": json_float(self.estimate),
            "ci_low": json_float(self.ci_low),
            "ci_high": json_float(self.ci_high),
            "p_value": json_float(self.p_value),
            "statistic": json_float(self.statistic),
            "df": None if self.df is None else json_float(self.df),
            "mean_a": json_float(self.mean_a),
            "mean_b": json_float(self.mean_b),
            "n_a": self.n_a,
            "n_b": self.n_b,
            "alpha": self.alpha,
            "significant": self.significant,
        }


def proportions_test(
    successes_a: int, n_a: int, successes_b: int, n_b: int, *, alpha: float = 0.05
) -> Comparison:
    """Two-proportion z-test of the rates successes/n (pooled statistic, Wald interval)."""
    alpha = open_unit(alpha, "alpha")
    x_a, units_a = successes_of(successes_a, n_a, "a")
    x_b, units_b = successes_of(successes_b, n_b, "b")
    p_a, p_b = x_a / units_a, x_b / units_b
    pooled = (x_a + x_b) / (units_a + units_b)
    difference = p_b - p_a
    null_variance = pooled * (1.0 - pooled) * (1.0 / units_a + 1.0 / units_b)
    if null_variance > 0.0:
        z = difference / math.sqrt(null_variance)
        p_value = float(2.0 * stats.norm.sf(abs(z)))
    else:
        z = p_value = NAN
    half = float(stats.norm.ppf(1.0 - alpha / 2.0)) * math.sqrt(
        p_a * (1.0 - p_a) / units_a + p_b * (1.0 - p_b) / units_b
    )
    if null_variance == 0.0:
        half = NAN
    return Comparison(
        estimate=difference,
        ci_low=difference - half,
        ci_high=difference + half,
        p_value=p_value,
        statistic=z,
        df=None,
        mean_a=p_a,
        mean_b=p_b,
        n_a=units_a,
        n_b=units_b,
        alpha=alpha,
    )


def welch_test(a: npt.ArrayLike, b: npt.ArrayLike, *, alpha: float = 0.05) -> Comparison:
    """Welch's t-test of mean(b) - mean(a); each group needs two finite values."""
    return welch_of(sample(a, "a"), sample(b, "b"), open_unit(alpha, "alpha"))


def welch_of(a: FloatArray, b: FloatArray, alpha: float) -> Comparison:
    """Welch's test on checked samples (CUPED runs it on adjusted values)."""
    mean_a, mean_b = float(a.mean()), float(b.mean())
    share_a = float(a.var(ddof=1)) / a.size  # the variance of each group's mean
    share_b = float(b.var(ddof=1)) / b.size
    variance = share_a + share_b
    difference = mean_b - mean_a
    if variance > 0.0:
        se = math.sqrt(variance)
        # (s_a²/n_a + s_b²/n_b)² / Σ (s²/n)²/(n - 1), in shares of the variance: no overflow
        w_a, w_b = share_a / variance, share_b / variance
        df = 1.0 / (w_a * w_a / (a.size - 1) + w_b * w_b / (b.size - 1))
        t = difference / se
        p_value = float(2.0 * stats.t.sf(abs(t), df))
        half = float(stats.t.ppf(1.0 - alpha / 2.0, df)) * se
    else:
        df = t = p_value = half = NAN
    return Comparison(
        estimate=difference,
        ci_low=difference - half,
        ci_high=difference + half,
        p_value=p_value,
        statistic=t,
        df=df,
        mean_a=mean_a,
        mean_b=mean_b,
        n_a=int(a.size),
        n_b=int(b.size),
        alpha=alpha,
    )
