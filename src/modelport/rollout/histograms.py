"""Histograms that add up across replicas: fixed buckets and bins, chosen without seeing data.

Two replicas that never see each other's requests bucket them alike, so the controller can sum
their rows; a quantile or a drift figure is then read from the sum.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

import numpy as np

LATENCY_MIN_S = 50e-6
LATENCY_MAX_S = 120.0
LATENCY_RATIO = 1.05
"""Bucket edges grow by 5 %: a quantile is at most 5 % high, fine enough for a +20 % p99 gate."""
_EDGES = tuple(
    LATENCY_MIN_S * LATENCY_RATIO**i
    for i in range(math.ceil(math.log(LATENCY_MAX_S / LATENCY_MIN_S, LATENCY_RATIO)) + 1)
)
_OVERFLOW = len(_EDGES)
MAX_PREDICTION_BINS = 64
"""Distinct bins kept per histogram; more (ids, free text) would not be a class distribution."""
OTHER = "other"
_PSI_FLOOR = 1e-4


@dataclass(slots=True)
class LatencyHistogram:
    """Sparse counts over log-spaced buckets: bucket i holds (edge[i-1], edge[i]] seconds."""

    buckets: dict[int, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(self.buckets.values())

    def record(self, seconds: float, count: int = 1) -> None:
        """``count`` requests that took ``seconds`` each (a shadow call answers many at once)."""
        # NaN lands in the overflow bucket: an unmeasured request must not look fast.
        index = _OVERFLOW if math.isnan(seconds) else bisect_left(_EDGES, seconds)
        self.buckets[index] = self.buckets.get(index, 0) + count

    def merge(self, other: LatencyHistogram) -> None:
        for index, n in other.buckets.items():
            self.buckets[index] = self.buckets.get(index, 0) + n

    def quantile(self, q: float) -> float | None:
        """Upper edge of the bucket holding the q-quantile: never low, at most 5 % high.

        Past the last edge (about 125 s) the estimate is inf: the bucket has no upper edge.
        """
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile {q} is not within 0..1")
        indices = sorted(self.buckets)
        cumulative = list(accumulate(self.buckets[i] for i in indices))
        if not cumulative or cumulative[-1] == 0:
            return None
        rank = max(1, math.ceil(q * cumulative[-1]))
        index = indices[bisect_left(cumulative, rank)]
        return math.inf if index == _OVERFLOW else _EDGES[index]

    def to_json(self) -> dict[str, int]:
        return {str(i): self.buckets[i] for i in sorted(self.buckets)}

    @classmethod
    def from_json(cls, data: Mapping[str, int]) -> LatencyHistogram:
        buckets = {int(key): int(n) for key, n in data.items()}
        if any(not 0 <= i <= _OVERFLOW or n < 0 for i, n in buckets.items()):
            raise ValueError(f"not a latency histogram: {dict(data)!r}")
        return cls(buckets)


@dataclass(slots=True)
class PredictionHistogram:
    """Counts of one slot's predictions, for a drift check between slots.

    Keys: ``label:<str(value)>`` for non-float outputs; for floats ``score:0.3`` (the decile
    [0.3, 0.4) of 0..1, 1.0 included in 0.9), ``score:+10^1.25`` (|x| in [10^1.25, 10^1.5),
    quarter decades outside 0..1), ``score:nan``, ``score:+inf``, ``score:-inf``. A value's bin
    depends on the value alone, so replicas bin alike. Past `MAX_PREDICTION_BINS` distinct keys,
    new ones count as `other`; which keys are kept then depends on arrival order.
    """

    bins: dict[str, int] = field(default_factory=dict)
    other: int = 0

    @property
    def count(self) -> int:
        return sum(self.bins.values()) + self.other

    def record(self, values: np.ndarray) -> None:
        tally = _score_bins(values) if values.dtype.kind == "f" else _label_bins(values)
        for key in sorted(tally):
            self._add(key, tally[key])

    def merge(self, other: PredictionHistogram) -> None:
        for key, n in other.bins.items():
            self._add(key, n)
        self.other += other.other

    def to_json(self) -> dict[str, int]:
        data = {key: self.bins[key] for key in sorted(self.bins)}
        return data | {OTHER: self.other} if self.other else data

    @classmethod
    def from_json(cls, data: Mapping[str, int]) -> PredictionHistogram:
        if any(int(n) < 0 for n in data.values()):
            raise ValueError(f"not a prediction histogram: {dict(data)!r}")
        bins = {key: int(n) for key, n in data.items() if key != OTHER}
        return cls(bins, int(data.get(OTHER, 0)))

    def _add(self, key: str, n: int) -> None:
        if key in self.bins or len(self.bins) < MAX_PREDICTION_BINS:
            self.bins[key] = self.bins.get(key, 0) + n
        else:
            self.other += n


def _label_bins(values: np.ndarray) -> Counter[str]:
    flat = values.ravel()
    if flat.dtype.kind == "O":  # mixed Python objects cannot be sorted by np.unique
        return Counter(f"label:{v}" for v in flat.tolist())
    return Counter({f"label:{value}": n for value, n in _unique(flat)})


def _score_bins(values: np.ndarray) -> Counter[str]:
    x = values.astype(np.float64).ravel()
    tally: Counter[str] = Counter()
    tally["score:nan"] = int(np.isnan(x).sum())
    tally["score:+inf"] = int(np.sum(x == np.inf))
    tally["score:-inf"] = int(np.sum(x == -np.inf))
    unit = (x >= 0.0) & (x <= 1.0)
    for decile, n in _unique(np.minimum(x[unit] * 10, 9).astype(np.int64)):
        tally[f"score:{decile / 10:.1f}"] = n
    rest = x[np.isfinite(x) & ~unit]  # never zero: 0.0 and -0.0 are in the unit interval
    # one integer per (quarter decade, sign): code // 2 is the quarter decade, code % 2 the sign
    codes = np.floor(np.log10(np.abs(rest)) * 4).astype(np.int64) * 2 + (rest < 0)
    for code, n in _unique(codes):
        tally[f"score:{'-' if code % 2 else '+'}10^{(code // 2) / 4:g}"] = n
    return +tally  # drops the zero counts


def _unique(values: np.ndarray) -> list[tuple[Any, int]]:
    """Each distinct value as a Python scalar, with its count."""
    uniques, counts = np.unique(values, return_counts=True)
    return list(zip(uniques.tolist(), counts.tolist(), strict=True))


def psi(expected: PredictionHistogram, actual: PredictionHistogram) -> float | None:
    """Population stability index of `actual` against `expected`; None if either is empty.

    Empty bins count as a share of 1e-4, so that one side's unseen bin costs a finite amount.
    """
    n_expected, n_actual = expected.count, actual.count
    if n_expected == 0 or n_actual == 0:
        return None
    e_bins, a_bins = expected.to_json(), actual.to_json()
    total = 0.0
    for key in e_bins.keys() | a_bins.keys():
        e = max(e_bins.get(key, 0) / n_expected, _PSI_FLOOR)
        a = max(a_bins.get(key, 0) / n_actual, _PSI_FLOOR)
        total += (a - e) * math.log(a / e)
    return total
