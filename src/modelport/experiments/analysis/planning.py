"""How many units an experiment needs: the sample size per group that gives a two-sided test at
`alpha` the wanted `power` against a minimum detectable effect (MDE), and the power of a given
size. Groups are equal; the total is twice the size per group.

* Proportions: Cohen's h of an ABSOLUTE MDE, h = 2 asin(sqrt(baseline + mde)) -
  2 asin(sqrt(baseline)) (the arcsine makes the variance 1/n whatever the rate), and
  n = ceil(2 (z_{1-alpha/2} + z_power)^2 / h^2).
* Means, normal: n = ceil(2 sd^2 (z_{1-alpha/2} + z_power)^2 / mde^2).
* Means, t: the smallest n whose two-sample t-test (df 2n - 2) has the power, by the
  noncentral t (noncentrality mde/sd * sqrt(n/2)); the normal formula is optimistic for small n.

Power counts both tails of the test, so the size reported is the smallest n whose power
reaches the target, searched from the closed formula's: the far tail only matters for very
large n, where it takes a few units off (as statsmodels' solve_power, rounded up, does).
docs/experiment-statistics.md has the formulas.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from scipy import stats

from modelport.errors import InvalidInputError
from modelport.experiments.analysis.checks import count, nonzero, open_unit, positive
from modelport.experiments.analysis.interval import JsonValue

MAX_RATIO = 1e6
"""(z_{1-alpha/2} + z_power) / effect size beyond which the size (over 2e12 per group) is no
plan; it also keeps the arithmetic finite."""


class PlannedMetric(StrEnum):
    PROPORTION = "proportion"
    MEAN = "mean"


class PlanMethod(StrEnum):
    NORMAL = "normal"
    """The closed formula under the normal approximation."""
    T = "t"
    """The two-sample t-test's exact power (noncentral t); means only."""


@dataclass(frozen=True, slots=True)
class SampleSize:
    metric: PlannedMetric
    method: PlanMethod
    per_group: int
    total: int
    """2 · per_group."""
    effect_size: float
    """Cohen's h for a proportion, d = mde / sd for a mean (signed like the MDE)."""
    alpha: float
    power: float
    """The power asked for."""
    achieved_power: float
    """The power at per_group, by the same method (at least `power`)."""

    def to_dict(self) -> dict[str, JsonValue]:
        return {
            "metric": str(self.metric),
            "method": str(self.method),
            "per_group": self.per_group,
            "total": self.total,
            "effect_size": self.effect_size,
            "alpha": self.alpha,
            "power": self.power,
            "achieved_power": self.achieved_power,
        }


def cohens_h(baseline: float, mde: float) -> float:
    """2·asin√(baseline + mde) - 2·asin√baseline, both rates checked to be in (0, 1)."""
    rate = open_unit(baseline, "baseline")
    shift = nonzero(mde, "mde")
    if not 0.0 < rate + shift < 1.0:
        raise InvalidInputError(
            f"baseline + mde must be strictly between 0 and 1, got {rate + shift:g}",
            pointer="/mde",
        )
    return 2.0 * math.asin(math.sqrt(rate + shift)) - 2.0 * math.asin(math.sqrt(rate))


def proportions_sample_size(
    baseline: float, mde: float, *, power: float = 0.8, alpha: float = 0.05
) -> SampleSize:
    """Units per group to detect a rate moving from `baseline` to `baseline + mde`."""
    alpha, target = open_unit(alpha, "alpha"), open_unit(power, "power")
    h = cohens_h(baseline, mde)
    n = _smallest_size(
        lambda size: _normal_power(h, size, alpha), _normal_size(h, alpha, target), target, 1
    )
    achieved = _normal_power(h, n, alpha)
    return SampleSize(
        PlannedMetric.PROPORTION, PlanMethod.NORMAL, n, 2 * n, h, alpha, target, achieved
    )


def means_sample_size(
    sd: float,
    mde: float,
    *,
    power: float = 0.8,
    alpha: float = 0.05,
    method: PlanMethod | str = PlanMethod.T,
) -> SampleSize:
    """Units per group to detect a mean moving by `mde`, for a metric of standard deviation `sd`."""
    alpha, target = open_unit(alpha, "alpha"), open_unit(power, "power")
    d = _standardised(sd, mde)
    how = _method(method)
    start = _normal_size(d, alpha, target)
    if how is PlanMethod.T:
        n = _smallest_size(lambda size: _t_power(d, size, alpha), start, target, 2)
    else:
        n = _smallest_size(lambda size: _normal_power(d, size, alpha), start, target, 1)
    achieved = means_power(sd, mde, n, alpha=alpha, method=how)
    return SampleSize(PlannedMetric.MEAN, how, n, 2 * n, d, alpha, target, achieved)


def proportions_power(
    baseline: float, mde: float, n_per_group: int, *, alpha: float = 0.05
) -> float:
    """Power of the two-proportion test with `n_per_group` units in each group."""
    alpha = open_unit(alpha, "alpha")
    h = cohens_h(baseline, mde)
    return _normal_power(h, count(n_per_group, "n_per_group", minimum=1), alpha)


def means_power(
    sd: float,
    mde: float,
    n_per_group: int,
    *,
    alpha: float = 0.05,
    method: PlanMethod | str = PlanMethod.T,
) -> float:
    """Power of the two-sample test of means with `n_per_group` units in each group."""
    alpha = open_unit(alpha, "alpha")
    d = _standardised(sd, mde)
    how = _method(method)
    n = count(n_per_group, "n_per_group", minimum=2 if how is PlanMethod.T else 1)
    return _t_power(d, n, alpha) if how is PlanMethod.T else _normal_power(d, n, alpha)


def _standardised(sd: float, mde: float) -> float:
    """Cohen's d = mde / sd, finite."""
    d = nonzero(mde, "mde") / positive(sd, "sd")
    if not math.isfinite(d):
        raise InvalidInputError(f"mde / sd is not a finite number: {mde} / {sd}", pointer="/sd")
    return d


def _smallest_size(
    power_of: Callable[[int], float], start: int, target: float, minimum: int
) -> int:
    """The smallest n >= minimum with power_of(n) >= target (power grows with n), bisected
    around the closed formula's n: the far tail can move the answer a long way below it in
    units, though not in share (about 2.5e-6 of n at 80 % power)."""
    high = max(minimum, start)
    while not power_of(high) >= target:
        high *= 2
    low = max(minimum, high - max(1, high // 1000))
    while low > minimum and power_of(low) >= target:
        low = max(minimum, low - (high - low) * 2)
    if power_of(low) >= target:
        return low
    while high - low > 1:  # power_of(low) < target <= power_of(high)
        middle = (low + high) // 2
        if power_of(middle) >= target:
            high = middle
        else:
            low = middle
    return high


def _normal_size(effect: float, alpha: float, power: float) -> int:
    z = float(stats.norm.ppf(1.0 - alpha / 2.0) + stats.norm.ppf(power))
    if abs(effect) * MAX_RATIO < z:  # also an h that rounds to 0 for a tiny mde
        raise InvalidInputError(
            f"mde is too small to detect: it needs over {2 * MAX_RATIO**2:.0e} units per group",
            pointer="/mde",
        )
    return math.ceil(2.0 * (z / effect) * (z / effect))


def _normal_power(effect: float, n: int, alpha: float) -> float:
    shift = abs(effect) * math.sqrt(n / 2.0)
    z = float(stats.norm.ppf(1.0 - alpha / 2.0))
    return float(stats.norm.sf(z - shift) + stats.norm.cdf(-z - shift))


def _t_power(effect: float, n: int, alpha: float) -> float:
    df = 2 * n - 2
    shift = abs(effect) * math.sqrt(n / 2.0)
    critical = float(stats.t.ppf(1.0 - alpha / 2.0, df))
    upper = float(stats.nct.sf(critical, df, shift))
    lower = float(stats.nct.cdf(-critical, df, shift))  # NaN where it is below ~1e-20
    return upper + (lower if math.isfinite(lower) else 0.0)


def _method(method: PlanMethod | str) -> PlanMethod:
    try:
        return PlanMethod(method)
    except ValueError as exc:
        names = ", ".join(PlanMethod)
        raise InvalidInputError(
            f"method must be one of {names}, not {method!r}", pointer="/method"
        ) from exc
