"""What one deployment slot served over a time window, in counters that add up across replicas.

Every replica keeps a `SlotWindow` per slot and flushes it as a JSON delta row; the controller
sums the rows of all replicas (`merge`) and hands the totals to the gates.
Nothing here is thread-safe: one owner (the replica's event loop) records into a window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np

from modelport.rollout.histograms import LatencyHistogram, PredictionHistogram
from modelport.runtimes.batch import Outputs


@dataclass(frozen=True, slots=True)
class Comparison:
    """How a shadow's answer to one mirrored request differs from the primary's."""

    rows: int
    disagreed: int
    abs_diff_sum: float
    """Over every finite element of the float outputs compared."""
    abs_diff_max: float


def compare_outputs(primary: Outputs, shadow: Outputs) -> Comparison:
    """Compare the outputs both slots return, row by row; a row disagrees if any output does.

    Labels (any non-float output) must be equal; probabilities (2-D float) must have the same
    argmax; other floats must be within 1e-6 + 1e-3·|primary|. NaN equals NaN. Without a common
    output, or when a common output's shape differs (rows included), every row disagrees: a
    shadow answering something else is not agreeing.
    """
    rows = int(next(iter(primary.values())).shape[0]) if primary else 0
    names = [name for name in primary if name in shadow]
    if not names or any(
        primary[n].shape[:1] != (rows,) or primary[n].shape != shadow[n].shape for n in names
    ):
        return Comparison(rows, rows, 0.0, 0.0)
    differ = np.zeros(rows, dtype=bool)
    diff_sum = diff_max = 0.0
    for name in names:
        a, b = primary[name], shadow[name]
        if a.dtype.kind == "f" and b.dtype.kind == "f":
            rows_differ, diffs = _compare_floats(a, b)
            diff_sum += float(diffs.sum())
            diff_max = max(diff_max, float(diffs.max(initial=0.0)))
        else:
            rows_differ = _compare_labels(a, b)
        differ |= rows_differ
    return Comparison(rows, int(differ.sum()), diff_sum, diff_max)


def _compare_floats(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows that differ, and the finite absolute differences of every element."""
    a2, b2 = _matrix(a).astype(np.float64), _matrix(b).astype(np.float64)
    with np.errstate(invalid="ignore"):  # inf - inf
        same = (a2 == b2) | (np.isnan(a2) & np.isnan(b2))
        diff = np.abs(a2 - b2)
        finite = np.isfinite(diff) & ~same
        rows_differ: np.ndarray
        if a.ndim == 2 and a.shape[1] > 1:
            rows_differ = np.asarray(_argmax(a2) != _argmax(b2))
        else:
            close = same | (finite & (diff <= 1e-6 + 1e-3 * np.abs(a2)))
            rows_differ = ~close.all(axis=1)
    return rows_differ, np.where(finite, diff, 0.0)


def _compare_labels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rows that differ; as Python objects, so that 1 == 1.0, "1" != 1 and NaN == NaN."""
    a2, b2 = _matrix(a).astype(object), _matrix(b).astype(object)
    equal = np.asarray((a2 == b2) | ((a2 != a2) & (b2 != b2)), dtype=bool)
    return ~np.asarray(equal.all(axis=1))


def _matrix(array: np.ndarray) -> np.ndarray:
    """One row per prediction (reshape(n, -1) fails on zero rows)."""
    return array.reshape(array.shape[0], math.prod(array.shape[1:]))


def _first_column(arrays: list[np.ndarray]) -> np.ndarray:
    """The first value of every row of ``arrays``, in order. Arrays of one shape beyond their
    rows (the usual case: one slot, one model) are joined first, in one call: slicing each
    request's array on its own took a microsecond a request from the thread that flushes."""
    try:
        joined = np.concatenate(arrays)
    except ValueError:  # shapes beyond the rows differ
        return np.concatenate([_matrix(values)[:, 0] for values in arrays])
    return _matrix(joined)[:, 0]


def _argmax(x: np.ndarray) -> np.ndarray:
    index: np.ndarray = np.where(np.isnan(x), -np.inf, x).argmax(axis=1)
    return index


class SlotWindowJson(TypedDict, total=False):
    """A window as stored in a delta row (histograms sparse); every key is optional on reading."""

    requests: int
    errors: int
    latency: dict[str, int]
    predictions: dict[str, int]
    compared: int
    disagreed: int
    abs_diff_sum: float
    abs_diff_max: float
    shadow_failures: int


@dataclass(slots=True)
class SlotWindow:
    """Counters of one slot: what it served, and how its mirrored answers compared."""

    requests: int = 0
    errors: int = 0
    """Requests answered with a server error (5xx): the slot's fault, not the client's."""
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    binned: PredictionHistogram = field(default_factory=PredictionHistogram)
    """Predictions already binned; see :attr:`predictions`."""
    unbinned: list[np.ndarray] = field(default_factory=list)
    """Predictions of requests served since the last binning: binning one request's worth
    (np.unique and friends) cost more than the request itself, so it waits for many."""
    compared: int = 0
    """Rows of mirrored requests whose shadow answer was compared with the primary's."""
    disagreed: int = 0
    abs_diff_sum: float = 0.0
    abs_diff_max: float = 0.0
    shadow_failures: int = 0
    """Mirrored requests the shadow failed to answer."""

    def served(self, status: int, elapsed_s: float, outputs: Outputs | None) -> None:
        """Count one request, errors included (a timeout must weigh on the p99).

        Of `outputs`, the first one in the runtime's order (the label of a classifier, the
        prediction of a regressor) goes into `predictions`; of a 2-D one, its first column.
        """
        self.requests += 1
        if status >= 500:
            self.errors += 1
        self.latency.record(elapsed_s)
        if outputs:
            first = next(iter(outputs.values()))
            self.unbinned.append(first)

    @property
    def predictions(self) -> PredictionHistogram:
        """Every prediction counted so far, binned."""
        if self.unbinned:
            self.binned.record(_first_column(self.unbinned))
            self.unbinned.clear()
        return self.binned

    def served_at_once(self, requests: int, elapsed_s: float) -> None:
        """``requests`` answered by one call (a shadow's mirrored copies), each taking all
        of ``elapsed_s``."""
        self.requests += requests
        self.latency.record(elapsed_s, requests)

    def mirrored(self, comparison: Comparison) -> None:
        self.compared += comparison.rows
        self.disagreed += comparison.disagreed
        self.abs_diff_sum += comparison.abs_diff_sum
        self.abs_diff_max = max(self.abs_diff_max, comparison.abs_diff_max)

    def mirror_failed(self, copies: int = 1) -> None:
        self.shadow_failures += copies

    def merge(self, other: SlotWindow) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.latency.merge(other.latency)
        self.predictions.merge(other.predictions)
        self.compared += other.compared
        self.disagreed += other.disagreed
        self.abs_diff_sum += other.abs_diff_sum
        self.abs_diff_max = max(self.abs_diff_max, other.abs_diff_max)
        self.shadow_failures += other.shadow_failures

    @property
    def empty(self) -> bool:
        return self.requests == 0 and self.compared == 0 and self.shadow_failures == 0

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def p99_s(self) -> float | None:
        return self.latency.quantile(0.99)

    @property
    def disagreement_rate(self) -> float | None:
        """A failed mirror counts as one disagreeing row: a crashing shadow must not look fine."""
        rows = self.compared + self.shadow_failures
        return (self.disagreed + self.shadow_failures) / rows if rows else None

    @property
    def mean_abs_diff(self) -> float | None:
        """Per compared row, summed over the row's float values."""
        return self.abs_diff_sum / self.compared if self.compared else None

    def to_json(self) -> SlotWindowJson:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "latency": self.latency.to_json(),
            "predictions": self.predictions.to_json(),
            "compared": self.compared,
            "disagreed": self.disagreed,
            "abs_diff_sum": self.abs_diff_sum,
            "abs_diff_max": self.abs_diff_max,
            "shadow_failures": self.shadow_failures,
        }

    @classmethod
    def from_json(cls, data: SlotWindowJson) -> SlotWindow:
        """Keys it does not know are ignored: a newer replica may write more during an upgrade."""
        return cls(
            requests=int(data.get("requests", 0)),
            errors=int(data.get("errors", 0)),
            latency=LatencyHistogram.from_json(data.get("latency", {})),
            binned=PredictionHistogram.from_json(data.get("predictions", {})),
            compared=int(data.get("compared", 0)),
            disagreed=int(data.get("disagreed", 0)),
            abs_diff_sum=float(data.get("abs_diff_sum", 0.0)),
            abs_diff_max=float(data.get("abs_diff_max", 0.0)),
            shadow_failures=int(data.get("shadow_failures", 0)),
        )
