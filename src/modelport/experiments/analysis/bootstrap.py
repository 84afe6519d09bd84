"""Percentile bootstrap of B - A: no distributional assumption, for statistics without a
closed-form variance (a median) or heavy-tailed metrics.

Each group is resampled on its own (with replacement, its own size), the statistic is taken on
each resample and B's minus A's is one draw of the difference; the interval is the alpha/2 and
1 - alpha/2 quantiles (linear interpolation) of `resamples` draws. The estimate is the statistic's
difference on the data themselves. The draws come from ``numpy.random.default_rng(seed)``,
resamples generated in batches of at most `BATCH_CELLS` indices per group, A's before B's in
each batch: the same stream as ``scipy.stats.bootstrap(..., method="percentile", batch=...)``
with the batch of `batch_size`, so a seed gives one answer everywhere.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import numpy.typing as npt

from modelport.errors import InvalidInputError
from modelport.experiments.analysis.checks import FloatArray, count, open_unit, sample
from modelport.experiments.analysis.interval import Interval

BATCH_CELLS = 1 << 22
"""Indices drawn per group and batch: 32 MiB of int64, whatever the group's size."""
DEFAULT_RESAMPLES = 10_000


class BootstrapStatistic(StrEnum):
    MEAN = "mean"
    MEDIAN = "median"


def bootstrap_difference(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    seed: int,
    resamples: int = DEFAULT_RESAMPLES,
    statistic: BootstrapStatistic | str = BootstrapStatistic.MEAN,
    alpha: float = 0.05,
) -> Interval:
    """statistic(b) - statistic(a) with its percentile interval over `resamples` draws."""
    alpha = open_unit(alpha, "alpha")
    values_a, values_b = sample(a, "a"), sample(b, "b")
    draws = count(resamples, "resamples", minimum=2)
    try:
        reduce = _REDUCERS[BootstrapStatistic(statistic)]
    except ValueError as exc:
        names = ", ".join(BootstrapStatistic)
        raise InvalidInputError(
            f"statistic must be one of {names}, not {statistic!r}", pointer="/statistic"
        ) from exc
    rng = np.random.default_rng(seed)
    batch = batch_size(values_a.size, values_b.size, draws)
    differences = np.empty(draws)
    for start in range(0, draws, batch):
        rows = min(batch, draws - start)
        resampled_a = values_a[rng.integers(0, values_a.size, (rows, values_a.size))]
        resampled_b = values_b[rng.integers(0, values_b.size, (rows, values_b.size))]
        differences[start : start + rows] = reduce(resampled_b) - reduce(resampled_a)
    low, high = np.quantile(differences, [alpha / 2.0, 1.0 - alpha / 2.0])
    estimate = float(reduce(values_b[np.newaxis])[0] - reduce(values_a[np.newaxis])[0])
    return Interval(estimate, float(low), float(high))


def batch_size(n_a: int, n_b: int, resamples: int) -> int:
    """Resamples drawn at once: as many as fit `BATCH_CELLS` indices for the larger group."""
    return max(1, min(resamples, BATCH_CELLS // max(n_a, n_b)))


def _mean(values: FloatArray) -> FloatArray:
    return np.asarray(values.mean(axis=-1), dtype=np.float64)


def _median(values: FloatArray) -> FloatArray:
    return np.asarray(np.median(values, axis=-1), dtype=np.float64)


_REDUCERS = {BootstrapStatistic.MEAN: _mean, BootstrapStatistic.MEDIAN: _median}
