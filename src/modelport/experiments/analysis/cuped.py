"""CUPED: a metric measured before the experiment (the covariate X) removes the part of the
outcome Y it predicts, so the same units give a narrower interval for the same effect.

One θ = cov(Y, X) / var(X) over both groups together (n - 1 in both), X centred on the mean of
both groups; each unit's Y' = Y - θ · (X - mean X), and Welch's test (see `comparisons`) runs on
Y', with θ taken as known. Randomisation makes X independent of the assignment, so centring on
the combined mean leaves the expected difference unchanged.

`variance_reduction` is 1 - Var'/Var, the share of the estimate's variance removed: Var and
Var' are Welch's s_A²/n_A + s_B²/n_B on Y and on Y'. A constant covariate predicts nothing:
θ = 0 and the result is the unadjusted test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from modelport.errors import InvalidInputError
from modelport.experiments.analysis.checks import FloatArray, open_unit, sample
from modelport.experiments.analysis.comparisons import Comparison, welch_of
from modelport.experiments.analysis.interval import NAN, JsonValue, json_float


@dataclass(frozen=True, slots=True)
class CupedResult:
    """The adjusted comparison, the unadjusted one beside it, and how much θ helped."""

    comparison: Comparison
    """Welch on Y'; its mean_a and mean_b are the adjusted means."""
    unadjusted: Comparison
    """Welch on Y, the same test without the covariate."""
    theta: float
    variance_reduction: float
    """1 - (variance of the adjusted estimate) / (variance of the unadjusted one); NaN when
    the outcome is constant. Negative only by chance (θ fitted on one group's noise)."""

    def to_dict(self) -> dict[str, JsonValue]:
        return {
            "comparison": self.comparison.to_dict(),
            "unadjusted": self.unadjusted.to_dict(),
            "theta": json_float(self.theta),
            "variance_reduction": json_float(self.variance_reduction),
        }


def cuped(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    covariate_a: npt.ArrayLike,
    covariate_b: npt.ArrayLike,
    *,
    alpha: float = 0.05,
) -> CupedResult:
    """Welch's test of B - A on outcomes adjusted by each unit's pre-experiment covariate."""
    alpha = open_unit(alpha, "alpha")
    y_a, y_b = sample(a, "a"), sample(b, "b")
    x_a, x_b = sample(covariate_a, "covariate_a"), sample(covariate_b, "covariate_b")
    for group, y, x in (("a", y_a, x_a), ("b", y_b, x_b)):
        if x.size != y.size:
            raise InvalidInputError(
                f"covariate_{group} has {x.size} values for {y.size} in {group}: one per unit",
                pointer=f"/covariate_{group}",
            )
    theta = cuped_theta(np.concatenate((y_a, y_b)), np.concatenate((x_a, x_b)))
    centre = float(np.concatenate((x_a, x_b)).mean())
    adjusted_a, adjusted_b = y_a - theta * (x_a - centre), y_b - theta * (x_b - centre)
    before = _variance_of_difference(y_a, y_b)
    after = _variance_of_difference(adjusted_a, adjusted_b)
    reduction = 1.0 - after / before if before > 0.0 else NAN
    return CupedResult(
        comparison=welch_of(adjusted_a, adjusted_b, alpha),
        unadjusted=welch_of(y_a, y_b, alpha),
        theta=theta,
        variance_reduction=reduction,
    )


def cuped_theta(y: FloatArray, x: FloatArray) -> float:
    """cov(Y, X) / var(X) over the pooled units; 0 for a constant covariate."""
    if x.min() == x.max():  # a mean off by an ulp would make rounding noise look like signal
        return 0.0
    x_centred = x - x.mean()
    return float(x_centred @ (y - y.mean())) / float(x_centred @ x_centred)


def _variance_of_difference(a: FloatArray, b: FloatArray) -> float:
    return float(a.var(ddof=1)) / a.size + float(b.var(ddof=1)) / b.size
