"""Drift statistics of one column against its reference, and the verdicts drawn from them.

The definitions are a contract (docs/drift.md says the same in prose):

* Missing values are dropped before every statistic (see `binning`); their share is its own
  measure, ``missing_rate``: current missing share - reference missing share, drift when its
  absolute value reaches 0.05.
* ``psi`` = Σ (a - e)·ln(a / e) over the reference's quantile bins (numeric) or the union of
  both sides' categories; e and a are the reference and current shares, each plus 1e-6 and
  renormalised to sum 1. Drift at ≥ 0.2.
* ``js``: Jensen-Shannon distance (the square root of the divergence), base 2, on the raw shares
  of the same bins or categories; in [0, 1]. Drift at ≥ 0.1.
* ``wasserstein``: first Wasserstein distance divided by the reference's standard deviation
  (ddof 0); a constant reference has no scale, so the raw distance is kept. Drift at ≥ 0.1.
* ``ks``: two-sample Kolmogorov-Smirnov (scipy's defaults); drift when p < 0.05.
* ``chi2``: chi-square test of homogeneity on the 2 x k table of counts, no continuity
  correction; fewer than two categories give statistic 0 and p = 1. Drift when p < 0.05.

Who decides: a p-value test when either side has at most `SMALL_SAMPLE` present values, a
distance otherwise (a test on two large samples calls the smallest harmless shift significant).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

import numpy as np
from scipy import special, stats

from modelport.monitoring.binning import (
    DEFAULT_BINS,
    ColumnSummary,
    FeatureKind,
    JsonValue,
    aligned_counts,
    bin_counts,
    category_counts,
    infer_kind,
    present,
)


class StatisticName(StrEnum):
    PSI = "psi"
    KS = "ks"
    JS = "js"
    WASSERSTEIN = "wasserstein"
    CHI2 = "chi2"
    MISSING_RATE = "missing_rate"


THRESHOLDS: Mapping[StatisticName, float] = MappingProxyType(
    {
        StatisticName.PSI: 0.2,
        StatisticName.KS: 0.05,
        StatisticName.JS: 0.1,
        StatisticName.WASSERSTEIN: 0.1,
        StatisticName.CHI2: 0.05,
        StatisticName.MISSING_RATE: 0.05,
    }
)
"""Default thresholds: a p-value bound for the tests, a value bound for everything else."""
TESTS = frozenset({StatisticName.KS, StatisticName.CHI2})
METHODS: Mapping[FeatureKind, tuple[StatisticName, ...]] = MappingProxyType(
    {
        FeatureKind.NUMERIC: (
            StatisticName.PSI,
            StatisticName.JS,
            StatisticName.KS,
            StatisticName.WASSERSTEIN,
            StatisticName.MISSING_RATE,
        ),
        FeatureKind.CATEGORICAL: (
            StatisticName.PSI,
            StatisticName.JS,
            StatisticName.CHI2,
            StatisticName.MISSING_RATE,
        ),
    }
)
"""Every statistic a column of each kind gets, in report order."""
SMALL_SAMPLE = 1000
"""At or below this many present values on either side, a p-value test decides."""
PSI_SMOOTHING = 1e-6


@dataclass(frozen=True, slots=True)
class StatisticResult:
    """One statistic of one column with its verdict, so a report shows why a feature drifted."""

    method: StatisticName
    value: float
    threshold: float
    drifted: bool
    p_value: float | None = None

    def to_dict(self) -> dict[str, JsonValue]:
        return {
            "method": str(self.method),
            "value": _finite(self.value),
            "threshold": self.threshold,
            "drifted": self.drifted,
            "p_value": None if self.p_value is None else _finite(self.p_value),
        }


def verdict(
    method: StatisticName,
    value: float,
    threshold: float | None = None,
    p_value: float | None = None,
) -> StatisticResult:
    """The result of `method`: p < threshold for tests, |value| ≥ threshold for the rest."""
    limit = THRESHOLDS[method] if threshold is None else float(threshold)
    if method in TESTS:
        if p_value is None:
            raise ValueError(f"{method} decides on a p-value")
        drifted = p_value < limit
    else:
        drifted = abs(value) >= limit
    p = None if p_value is None else float(p_value)
    return StatisticResult(StatisticName(method), float(value), limit, bool(drifted), p)


def psi_of_counts(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI of aligned counts (or shares): 1e-6 added to every share, each side renormalised."""
    e, a = _smoothed(expected), _smoothed(actual)
    return float(np.sum((a - e) * np.log(a / e)))


def _smoothed(counts: np.ndarray) -> np.ndarray:
    shares = counts / counts.sum() + PSI_SMOOTHING
    return np.asarray(shares / shares.sum())


def js_of_counts(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance, base 2, of aligned counts: scipy's jensenshannon, step by step,
    with the square root of a rounding-negative divergence taken as 0."""
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2.0
    divergence = (np.sum(special.rel_entr(p, m)) + np.sum(special.rel_entr(q, m))) / np.log(2.0)
    return min(math.sqrt(max(float(divergence) / 2.0, 0.0)), 1.0)


def chi2_of_counts(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Statistic and p-value of the homogeneity test on the 2 x k table, no correction."""
    table = np.vstack([reference, current])
    table = table[:, table.sum(axis=0) > 0]  # a category neither side has is no category
    if table.shape[1] < 2:
        return 0.0, 1.0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def wasserstein_of_sorted(u: np.ndarray, v: np.ndarray) -> float:
    """First Wasserstein distance of two sorted samples: ∫|U - V| over the merged points.

    The same sum as scipy.stats.wasserstein_distance, which argsorts both sides, sorts their
    union and searches it twice: 0.3 s for 1M rows against 25 ms here, where a stable argsort of
    two sorted runs is one linear merge. Within a run of equal values the step width is 0, so the
    order of ties between the sides does not matter.
    """
    values = np.concatenate((u, v))
    order = np.argsort(values, kind="stable")
    merged = values[order]
    from_u = np.cumsum(order < u.size)[:-1]
    from_v = np.arange(1, merged.size) - from_u
    return float(np.sum(np.abs(from_u / u.size - from_v / v.size) * np.diff(merged)))


def _normalised_wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    distance = wasserstein_of_sorted(np.sort(reference), np.sort(current))
    scale = float(reference.std())
    return distance / scale if scale > 0 else distance


def psi(
    reference: np.ndarray,
    current: np.ndarray,
    kind: FeatureKind | None = None,
    *,
    bins: int = DEFAULT_BINS,
    threshold: float | None = None,
) -> StatisticResult:
    expected, actual = _aligned(reference, current, kind, bins)
    return verdict(StatisticName.PSI, psi_of_counts(expected, actual), threshold)


def js(
    reference: np.ndarray,
    current: np.ndarray,
    kind: FeatureKind | None = None,
    *,
    bins: int = DEFAULT_BINS,
    threshold: float | None = None,
) -> StatisticResult:
    p, q = _aligned(reference, current, kind, bins)
    return verdict(StatisticName.JS, js_of_counts(p, q), threshold)


def ks(
    reference: np.ndarray, current: np.ndarray, threshold: float | None = None
) -> StatisticResult:
    ref, cur = _both_present(reference, current, FeatureKind.NUMERIC)
    result = stats.ks_2samp(ref, cur)
    return verdict(StatisticName.KS, float(result.statistic), threshold, float(result.pvalue))


def wasserstein(
    reference: np.ndarray, current: np.ndarray, threshold: float | None = None
) -> StatisticResult:
    ref, cur = _both_present(reference, current, FeatureKind.NUMERIC)
    return verdict(StatisticName.WASSERSTEIN, _normalised_wasserstein(ref, cur), threshold)


def chi2(
    reference: np.ndarray, current: np.ndarray, threshold: float | None = None
) -> StatisticResult:
    expected, actual = _aligned(reference, current, FeatureKind.CATEGORICAL, DEFAULT_BINS)
    statistic, p_value = chi2_of_counts(expected, actual)
    return verdict(StatisticName.CHI2, statistic, threshold, p_value)


def missing_rate_change(
    reference: np.ndarray,
    current: np.ndarray,
    kind: FeatureKind | None = None,
    threshold: float | None = None,
) -> StatisticResult:
    kind = kind or infer_kind(reference)
    change = _missing_share(current, kind) - _missing_share(reference, kind)
    return verdict(StatisticName.MISSING_RATE, change, threshold)


def _missing_share(values: np.ndarray, kind: FeatureKind) -> float:
    if values.size == 0:
        raise ValueError("a column with no rows has no missing share")
    return (values.size - present(values, kind).size) / values.size


def _both_present(
    reference: np.ndarray, current: np.ndarray, kind: FeatureKind
) -> tuple[np.ndarray, np.ndarray]:
    ref, cur = present(reference, kind), present(current, kind)
    if ref.size == 0 or cur.size == 0:
        raise ValueError("both sides need present values")
    return ref, cur


def _aligned(
    reference: np.ndarray, current: np.ndarray, kind: FeatureKind | None, bins: int
) -> tuple[np.ndarray, np.ndarray]:
    kind = kind or infer_kind(reference)
    ref, cur = _both_present(reference, current, kind)
    return _summary_counts(ColumnSummary.of(ref, kind, bins), cur)


def _summary_counts(summary: ColumnSummary, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current counts over the summary's bins, or the union of categories."""
    if summary.kind is FeatureKind.NUMERIC:
        return np.asarray(summary.counts), bin_counts(current, np.asarray(summary.edges))
    _, expected, actual = aligned_counts(summary.frequencies(), category_counts(current))
    return expected, actual


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def default_method(kind: FeatureKind, n_reference: int, n_current: int) -> StatisticName:
    """KS or chi-square while either side is small, Wasserstein or JS once both are large.

    A test's power grows with the smaller sample: past a thousand values on both sides it finds
    shifts too small to matter, while a distance there is stable; below, a distance is noise
    that the test's p-value accounts for.
    """
    small = min(n_reference, n_current) <= SMALL_SAMPLE
    if kind is FeatureKind.NUMERIC:
        return StatisticName.KS if small else StatisticName.WASSERSTEIN
    return StatisticName.CHI2 if small else StatisticName.JS


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """Every statistic of one column, and which one decided whether it drifted."""

    kind: FeatureKind
    method: StatisticName
    statistics: tuple[StatisticResult, ...]
    n_reference: int
    """Present values on each side: the sizes the default method was chosen by."""
    n_current: int

    def __getitem__(self, method: StatisticName) -> StatisticResult:
        for result in self.statistics:
            if result.method == method:
                return result
        raise KeyError(method)

    @property
    def decision(self) -> StatisticResult:
        return self[self.method]

    @property
    def drifted(self) -> bool:
        return self.decision.drifted

    def to_dict(self) -> dict[str, JsonValue]:
        return {
            "kind": str(self.kind),
            "method": str(self.method),
            "drifted": self.drifted,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "statistics": {str(r.method): r.to_dict() for r in self.statistics},
        }


def column_drift(
    reference: np.ndarray,
    current: np.ndarray,
    kind: FeatureKind | None = None,
    method: StatisticName | None = None,
    threshold: float | None = None,
    *,
    bins: int = DEFAULT_BINS,
) -> FeatureDrift:
    """Every statistic of a column of `kind` (from the reference's dtype when None); `method`
    (default: `default_method`) decides, against `threshold` (default: its `THRESHOLDS`)."""
    kind = kind or infer_kind(reference)
    summary = ColumnSummary.of(reference, kind, bins)
    return drift_against(summary, reference, current, method=method, threshold=threshold)


def drift_against(
    summary: ColumnSummary,
    sample: np.ndarray,
    current: np.ndarray,
    *,
    method: StatisticName | None = None,
    threshold: float | None = None,
) -> FeatureDrift:
    """`column_drift` against a reference known by its summary (bins, counts, missing) and a
    sample of its values (KS and Wasserstein need values); a stored profile compares this way.

    When either side has no present value only the missing rate is measured, and decides; when
    the sample has none, PSI stands in for KS and Wasserstein.
    """
    kind = summary.kind
    method = None if method is None else StatisticName(method)
    if method is not None and method not in METHODS[kind]:
        raise ValueError(f"{method} does not apply to a {kind} column")
    if current.size == 0:
        raise ValueError("the current column has no rows")
    cur = present(current, kind)
    chosen = method or default_method(kind, summary.present, cur.size)

    def limit(name: StatisticName) -> float | None:
        return threshold if name == chosen else None

    missing = (current.size - cur.size) / current.size - summary.missing_rate
    results = [verdict(StatisticName.MISSING_RATE, missing, limit(StatisticName.MISSING_RATE))]
    if summary.present and cur.size:
        results[:0] = _distribution(summary, sample, cur, limit)
    computed = {r.method for r in results}
    if chosen not in computed:
        chosen = StatisticName.PSI if StatisticName.PSI in computed else StatisticName.MISSING_RATE
    return FeatureDrift(kind, chosen, tuple(results), summary.present, int(cur.size))


def _distribution(
    summary: ColumnSummary,
    sample: np.ndarray,
    current: np.ndarray,
    limit: Callable[[StatisticName], float | None],
) -> list[StatisticResult]:
    expected, actual = _summary_counts(summary, current)
    results = [
        verdict(StatisticName.PSI, psi_of_counts(expected, actual), limit(StatisticName.PSI)),
        verdict(StatisticName.JS, js_of_counts(expected, actual), limit(StatisticName.JS)),
    ]
    if summary.kind is FeatureKind.CATEGORICAL:
        statistic, p_value = chi2_of_counts(expected, actual)
        results.append(verdict(StatisticName.CHI2, statistic, limit(StatisticName.CHI2), p_value))
    elif (values := present(sample, FeatureKind.NUMERIC)).size:
        test = stats.ks_2samp(values, current)
        ks_statistic, ks_p = float(test.statistic), float(test.pvalue)
        results += [
            verdict(StatisticName.KS, ks_statistic, limit(StatisticName.KS), ks_p),
            verdict(
                StatisticName.WASSERSTEIN,
                _normalised_wasserstein(values, current),
                limit(StatisticName.WASSERSTEIN),
            ),
        ]
    return results


@dataclass(frozen=True, slots=True)
class DatasetDrift:
    """The share of drifted features, and whether it reached the share that calls a data set
    drifted."""

    features: int
    drifted_features: int
    threshold: float
    drifted: bool

    @property
    def share(self) -> float:
        return self.drifted_features / self.features if self.features else 0.0

    def to_dict(self) -> dict[str, JsonValue]:
        return {
            "features": self.features,
            "drifted_features": self.drifted_features,
            "share": self.share,
            "threshold": self.threshold,
            "drifted": self.drifted,
        }


def dataset_drift(results: Iterable[FeatureDrift], share: float = 0.5) -> DatasetDrift:
    """Drifted when at least `share` of the features drifted (none: not drifted)."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be within (0, 1], not {share}")
    verdicts = [r.drifted for r in results]
    drifted = sum(verdicts)
    return DatasetDrift(
        len(verdicts), drifted, share, bool(verdicts) and drifted / len(verdicts) >= share
    )
