"""Reading alternating rounds (A B C A B C …) of one run: the median round of each target and
its cost against a baseline.

On a shared two-core machine the same target's throughput moves by ±10 % from one 5 s round
to the next (other tenants, frequency). Rounds taken side by side meet the same moment, so
the ratio of each round to the baseline's round just before it is steadier than a ratio of
two medians; the tables show both, the spread of the paired ratios and a 95 % bootstrap interval
of their median. Only where that interval lies wholly on one side of a target does a run say
the target is met or missed; a few rounds give an interval wider than a 10 % target.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np

from load import LoadResult


def median_round(results: list[LoadResult]) -> LoadResult:
    """The round with the median throughput (a real round, not a mix of several)."""
    ordered = sorted(results, key=lambda r: r.req_per_s)
    return ordered[len(ordered) // 2]


BOOTSTRAP_RESAMPLES = 2000
PAIRED_HEADER = "paired [95 % CI] (range)"


@dataclass(frozen=True, slots=True)
class Paired:
    median: float
    ci_low: float
    ci_high: float
    """The 95 % percentile-bootstrap interval of ``median``."""
    low: float
    high: float

    def __str__(self) -> str:
        return (
            f"{self.median:.2f} [{self.ci_low:.2f}-{self.ci_high:.2f}] "
            f"({self.low:.2f}-{self.high:.2f})"
        )


def paired_ratio(results: list[LoadResult], baseline: list[LoadResult]) -> Paired:
    """Throughput of each round over the baseline's round of the same pass."""
    ratios = [r.req_per_s / b.req_per_s for r, b in zip(results, baseline, strict=True)]
    ci_low, ci_high = median_interval(ratios)
    return Paired(statistics.median(ratios), ci_low, ci_high, min(ratios), max(ratios))


def median_interval(values: list[float]) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the median of ``values`` (fixed seed: the same
    rounds print the same interval)."""
    data = np.asarray(values, dtype=np.float64)
    picks = np.random.default_rng(0).integers(0, len(data), (BOOTSTRAP_RESAMPLES, len(data)))
    low, high = np.quantile(np.median(data[picks], axis=1), [0.025, 0.975])
    return float(low), float(high)


def cpu_us_per_request(result: LoadResult) -> float:
    return result.server_cpu_s / max(result.requests, 1) * 1e6
