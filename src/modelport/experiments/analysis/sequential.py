"""Always-valid inference: the mixture sequential probability ratio test (mSPRT, Johari et al.,
"Always valid inference"), so an experiment may be looked at after every unit and stopped at
the first significant look without inflating the false-positive rate.

Observations are paired in arrival order, d_i = b_i - a_i for i <= n = min(len(a), len(b)).
After n pairs, with m their mean, s2 their sample variance (n - 1, the plug-in for sigma^2)
and tau2 the mixing variance (a variance on the effect's scale, fixed before the data),

    Lambda_n = sqrt(s2 / (s2 + n tau2)) * exp(n^2 tau2 m^2 / (2 s2 (s2 + n tau2)))

and the always-valid p-value is p_n = min(p_{n-1}, 1 / Lambda_n), capped at 1. The plug-in
variance needs a few pairs: p_n = 1 for n < `BURN_IN`, and a look whose s2 is 0 (every
difference so far equal) leaves p where it was. The test rejects once p_n <= alpha.

The confidence sequence inverts the same Lambda around any effect theta: look n gives
m +- r_n, r_n^2 = s2 (s2 + n tau2) / (n^2 tau2) * (2 ln(1/alpha) + ln((s2 + n tau2) / s2)),
and the reported interval is the intersection of every look from `BURN_IN` on, so it excludes
0 (or has it at an end) exactly when p <= alpha. An empty intersection (a plug-in variance
that moved a lot) is reported as NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from modelport.experiments.analysis.checks import FloatArray, nonzero, open_unit, positive, sample
from modelport.experiments.analysis.interval import NAN, JsonValue, json_float

BURN_IN = 10
"""Pairs before the first look: the plug-in variance of fewer is too noisy to lean on."""


@dataclass(frozen=True, slots=True)
class SequentialResult:
    """The mSPRT after every pair seen so far."""

    estimate: float
    """Mean of the paired differences b_i - a_i (NaN with no pairs)."""
    ci_low: float
    ci_high: float
    """The always-valid (1 - alpha) confidence sequence at the last pair (±inf before any
    look, NaN if empty)."""
    p_value: float
    """The always-valid p-value after the last pair."""
    n: int
    """Pairs used: min(len(a), len(b))."""
    variance: float
    """s2, the plug-in variance of the differences at the last pair (NaN under two pairs)."""
    tau2: float
    alpha: float
    rejected: bool
    """p_value ≤ alpha: the treatment differs from the control, at any time it was looked at."""
    crossed_at: int | None
    """The number of pairs at which p first reached alpha; None if it has not."""
    p_values: FloatArray = field(compare=False, repr=False)
    """p after each pair (index i: after i + 1 pairs), read-only; left out of `to_dict`."""

    def to_dict(self) -> dict[str, JsonValue]:
        return {
            "estimate": json_float(self.estimate),
            "ci_low": json_float(self.ci_low),
            "ci_high": json_float(self.ci_high),
            "p_value": self.p_value,
            "n": self.n,
            "variance": json_float(self.variance),
            "tau2": self.tau2,
            "alpha": self.alpha,
            "rejected": self.rejected,
            "crossed_at": self.crossed_at,
        }


def mixing_variance(mde: float) -> float:
    """tau2 = mde^2: the mixture is most sensitive to effects near the one planned for (at that
    effect it rejects within 0.1 % of the fewest pairs any tau2 needs)."""
    return nonzero(mde, "mde") ** 2


def msprt(
    a: npt.ArrayLike, b: npt.ArrayLike, *, tau2: float, alpha: float = 0.05
) -> SequentialResult:
    """Always-valid p-value and confidence sequence of B - A on observations in arrival order."""
    alpha = open_unit(alpha, "alpha")
    tau2 = positive(tau2, "tau2")
    values_a, values_b = sample(a, "a", minimum=0), sample(b, "b", minimum=0)
    n = min(values_a.size, values_b.size)
    differences = values_b[:n] - values_a[:n]
    looks = np.arange(1, n + 1, dtype=np.float64)
    means, variances = _running_moments(differences, looks)
    # equal differences have variance 0, which rounding in the sums could turn into 1e-35
    varied = np.maximum.accumulate(differences) > np.minimum.accumulate(differences)
    usable = (looks >= BURN_IN) & varied & (variances > 0.0)  # > 0: squares may underflow
    # a vanishing (but positive) variance makes the evidence overflow to inf: p = 0, radius inf
    with np.errstate(over="ignore"):
        sigma2 = np.where(usable, variances, 1.0)  # placeholders where no look is taken
        spread = sigma2 + looks * tau2
        log_lambda = 0.5 * np.log(sigma2 / spread) + looks**2 * tau2 * means**2 / (
            2.0 * sigma2 * spread
        )
        p_each = np.where(usable, np.exp(-np.maximum(log_lambda, 0.0)), 1.0)
        radius = np.sqrt(
            spread
            / (looks**2 * tau2)
            * sigma2
            * (2.0 * math.log(1.0 / alpha) + np.log(spread / sigma2))
        )
    p_values = np.minimum.accumulate(p_each)
    p_values.setflags(write=False)
    low, high = _intersection(means - radius, means + radius, usable)
    crossing = np.flatnonzero(p_values <= alpha)
    return SequentialResult(
        estimate=float(means[-1]) if n else NAN,
        ci_low=low,
        ci_high=high,
        p_value=float(p_values[-1]) if n else 1.0,
        n=n,
        variance=(float(variances[-1]) if varied[-1] else 0.0) if n >= 2 else NAN,
        tau2=tau2,
        alpha=alpha,
        rejected=bool(crossing.size),
        crossed_at=int(crossing[0]) + 1 if crossing.size else None,
        p_values=p_values,
    )


def _running_moments(values: FloatArray, looks: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Mean and sample variance (n - 1; NaN at n = 1) of every prefix, in one pass.

    Sums are taken around the overall mean so that a large common offset does not cancel
    away the variance's digits.
    """
    if values.size == 0:
        return values, values
    shifted = values - values.mean()
    sums = np.cumsum(shifted)
    squares = np.cumsum(shifted**2)
    means = sums / looks + values.mean()
    variances = np.full(values.size, NAN)
    if values.size > 1:
        deviations = squares[1:] - sums[1:] ** 2 / looks[1:]
        variances[1:] = np.maximum(deviations, 0.0) / (looks[1:] - 1.0)
    return means, variances


def _intersection(
    lows: FloatArray, highs: FloatArray, usable: npt.NDArray[np.bool_]
) -> tuple[float, float]:
    if not usable.any():
        return -math.inf, math.inf
    low, high = float(lows[usable].max()), float(highs[usable].min())
    return (low, high) if low <= high else (NAN, NAN)
