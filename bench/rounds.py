"""Reading alternating rounds (A B C A B C …) of one run: the median round of each target and
its cost against a baseline.

On a shared two-core machine the same target's throughput moves by ±10 % from one 5 s round
to the next (other tenants, frequency). Rounds taken side by side meet the same moment, so
the ratio of each round to the baseline's round just before it is steadier than a ratio of
two medians; the tables show both, and the spread of the paired ratios.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from load import LoadResult


def median_round(results: list[LoadResult]) -> LoadResult:
    """The round with the median throughput (a real round, not a mix of several)."""
    ordered = sorted(results, key=lambda r: r.req_per_s)
    return ordered[len(ordered) // 2]


@dataclass(frozen=True, slots=True)
class Paired:
    median: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.median:.2f} ({self.low:.2f}-{self.high:.2f})"


def paired_ratio(results: list[LoadResult], baseline: list[LoadResult]) -> Paired:
    """Throughput of each round over the baseline's round of the same pass."""
    ratios = [r.req_per_s / b.req_per_s for r, b in zip(results, baseline, strict=True)]
    return Paired(statistics.median(ratios), min(ratios), max(ratios))


def cpu_us_per_request(result: LoadResult) -> float:
    return result.server_cpu_s / max(result.requests, 1) * 1e6
