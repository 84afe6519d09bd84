"""Bins and categories, built once and shared by PSI, Jensen-Shannon and a stored profile.

Missing values are dropped here and nowhere else: NaN and ±inf in a numeric column (an infinite
value has no place on a distance scale), None and NaN in a categorical one. Categories are
compared by their ``str()`` form, so the keys of a stored profile and a live column agree.
Numeric bins are ``[lo, hi)`` between the reference's quantiles, the outer two opened to ±inf;
duplicate edges are kept, so a bin may be empty by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

import numpy as np

JsonValue: TypeAlias = str | int | float | bool | list["JsonValue"] | dict[str, "JsonValue"] | None
"""What ``json.dumps(..., allow_nan=False)`` accepts: every ``to_dict`` of this layer returns it."""

DEFAULT_BINS = 10


class FeatureKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


def infer_kind(values: np.ndarray) -> FeatureKind:
    """Integers and floats are numeric; bool, strings and Python objects are categories."""
    if values.dtype.kind in "iuf":
        return FeatureKind.NUMERIC
    if values.dtype.kind in "bUSO":
        return FeatureKind.CATEGORICAL
    raise ValueError(f"no drift statistic for dtype {values.dtype}")


def present(values: np.ndarray, kind: FeatureKind) -> np.ndarray:
    """The values every statistic sees: missing ones dropped; float64 or str by kind."""
    if values.ndim != 1:
        raise ValueError(f"a column is one-dimensional, not of shape {values.shape}")
    if kind is FeatureKind.NUMERIC:
        numbers = _as_float(values)
        return np.asarray(numbers[np.isfinite(numbers)])
    if values.dtype.kind in "Of":
        return np.asarray(values[~_missing_category(values)].astype(str))
    return np.asarray(values.astype(str))


def canonical(values: np.ndarray, kind: FeatureKind) -> np.ndarray:
    """Every row kept, in the form a stored sample holds: float64 (missing as NaN or ±inf) or
    objects (str, missing as None)."""
    if values.ndim != 1:
        raise ValueError(f"a column is one-dimensional, not of shape {values.shape}")
    if kind is FeatureKind.NUMERIC:
        return _as_float(values)
    out = np.full(values.shape, None, dtype=object)
    kept = ~_missing_category(values) if values.dtype.kind in "Of" else np.ones(values.shape, bool)
    out[kept] = values[kept].astype(str)
    return out


def _missing_category(values: np.ndarray) -> np.ndarray:
    """None or NaN, element-wise without a Python loop (NaN is the value unequal to itself)."""
    if values.dtype.kind == "f":
        return np.asarray(np.isnan(values))
    return np.asarray(_is_none(values) | (values != values), dtype=bool)


def _is_none(values: np.ndarray) -> np.ndarray:
    return np.asarray(values == np.array(None, dtype=object), dtype=bool)


def _as_float(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "O":  # numbers with None among them
        values = np.where(_is_none(values), np.nan, values)
    try:
        return np.asarray(values.astype(np.float64))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"a numeric column holds a value that is not a number: {exc}") from exc


def quantile_edges(reference: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """``bins + 1`` edges at the reference's quantiles (linear), the outer two opened to ±inf."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, not {bins}")
    values = present(reference, FeatureKind.NUMERIC)
    if values.size == 0:
        raise ValueError("the reference has no present values to take quantiles of")
    edges = np.asarray(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)), dtype=np.float64)
    edges[0], edges[-1] = -np.inf, np.inf
    return edges


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """How many present values fall in each ``[lo, hi)`` bin of ``edges`` (int64, len - 1)."""
    if edges.ndim != 1 or edges.size < 2 or edges[0] != -np.inf or edges[-1] != np.inf:
        raise ValueError("edges run from -inf to +inf")
    if np.any(edges[1:] < edges[:-1]):
        raise ValueError("edges must not decrease")
    numbers = present(values, FeatureKind.NUMERIC)
    # side="right" puts a value equal to an edge into the bin that edge opens; with duplicate
    # edges that is the last of them, so the bins between duplicates stay empty
    index = np.searchsorted(edges, numbers, side="right") - 1
    return np.asarray(np.bincount(index, minlength=edges.size - 1), dtype=np.int64)


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of the present values in each bin: counts over their sum, no smoothing."""
    counts = bin_counts(values, edges)
    total = counts.sum()
    if total == 0:
        raise ValueError("no present values to share out")
    return np.asarray(counts / total)


def category_counts(values: np.ndarray) -> dict[str, int]:
    """Count of each category among the present values, keyed by ``str()``, sorted by key."""
    categories, counts = np.unique(present(values, FeatureKind.CATEGORICAL), return_counts=True)
    return dict(zip(categories.tolist(), counts.tolist(), strict=True))


def aligned_counts(
    reference: Mapping[str, int], current: Mapping[str, int]
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Both sides' counts over the union of their categories (sorted): unseen ones count 0."""
    categories = tuple(sorted(reference.keys() | current.keys()))
    return (
        categories,
        np.array([reference.get(c, 0) for c in categories], dtype=np.int64),
        np.array([current.get(c, 0) for c in categories], dtype=np.int64),
    )


@dataclass(frozen=True, slots=True)
class ColumnSummary:
    """A reference column reduced to its counts over bins or categories: PSI, JS and chi-square
    need no more, so a stored profile compares as the raw column would."""

    kind: FeatureKind
    rows: int
    missing: int
    edges: tuple[float, ...] = ()
    """Numeric: the ``bins + 1`` edges, outer ones ±inf; empty when nothing is present."""
    counts: tuple[int, ...] = ()
    """Present values per bin (numeric) or per category (categorical, in `categories` order)."""
    categories: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, values: np.ndarray, kind: FeatureKind | None = None, bins: int = DEFAULT_BINS
    ) -> ColumnSummary:
        kind = kind or infer_kind(values)
        kept = present(values, kind)
        missing = int(values.size - kept.size)
        if kept.size == 0:
            return cls(kind, int(values.size), missing)
        if kind is FeatureKind.NUMERIC:
            edges = quantile_edges(kept, bins)
            counts = bin_counts(kept, edges)
            return cls(
                kind, int(values.size), missing, tuple(edges.tolist()), tuple(counts.tolist())
            )
        frequencies = category_counts(kept)
        return cls(
            kind, int(values.size), missing, (), tuple(frequencies.values()), tuple(frequencies)
        )

    @property
    def present(self) -> int:
        return self.rows - self.missing

    @property
    def missing_rate(self) -> float:
        return self.missing / self.rows if self.rows else 0.0

    def frequencies(self) -> dict[str, int]:
        return dict(zip(self.categories, self.counts, strict=True))

    def to_dict(self) -> dict[str, JsonValue]:
        """JSON-able; numeric edges without the two infinite ones, which JSON cannot hold."""
        data: dict[str, JsonValue] = {
            "kind": str(self.kind),
            "rows": self.rows,
            "missing": self.missing,
        }
        if self.kind is FeatureKind.NUMERIC:
            data["edges"] = list(self.edges[1:-1])
            data["counts"] = list(self.counts)
        else:
            data["counts"] = dict(self.frequencies())
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, JsonValue]) -> ColumnSummary:
        try:
            summary = cls._parse(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a column summary: {dict(data)!r}") from exc
        return summary

    @classmethod
    def _parse(cls, data: Mapping[str, JsonValue]) -> ColumnSummary:
        kind = FeatureKind(str(data["kind"]))
        rows, missing, counts = _int(data["rows"]), _int(data["missing"]), data["counts"]
        if kind is FeatureKind.NUMERIC:
            if not isinstance(counts, list) or not isinstance(inner := data["edges"], list):
                raise TypeError("numeric counts and edges are lists")
            if not counts and inner:
                raise ValueError("edges without counts")
            edges = (-np.inf, *(_float(e) for e in inner), np.inf) if counts else ()
            summary = cls(kind, rows, missing, edges, tuple(_int(n) for n in counts))
            if counts and (len(edges) != len(counts) + 1 or sorted(edges) != list(edges)):
                raise ValueError("edges do not bound the counts")
        else:
            if not isinstance(counts, dict):
                raise TypeError("categorical counts are an object")
            ordered = sorted(counts)
            summary = cls(
                kind, rows, missing, (), tuple(_int(counts[c]) for c in ordered), tuple(ordered)
            )
        if min((rows, missing, *summary.counts)) < 0 or sum(summary.counts) != rows - missing:
            raise ValueError("counts do not add up to the present rows")
        return summary


def _int(value: JsonValue) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"not an integer: {value!r}")
    return value


def _float(value: JsonValue) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise TypeError(f"not a finite number: {value!r}")
    return float(value)
