"""The reference profile: what registration keeps of the training data, so that later traffic
can be compared with it once the data itself is gone.

Per column a `ColumnSummary` (quantile edges and bin counts, or category counts; missing and
row counts) goes to JSON with `ReferenceProfile.to_dict`; a sample of rows (the same rows of
every column and of the predictions, capped) goes to a compressed ``.npz`` of plain arrays with
`ReferenceSample.to_bytes`, read back without pickle. PSI, JS and chi-square use the summaries,
KS and Wasserstein the sample.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from modelport.errors import InvalidInputError
from modelport.monitoring.binning import (
    DEFAULT_BINS,
    ColumnSummary,
    FeatureKind,
    JsonValue,
    canonical,
    infer_kind,
)
from modelport.monitoring.statistics import (
    DatasetDrift,
    FeatureDrift,
    dataset_drift,
    drift_against,
)

DEFAULT_SAMPLE_ROWS = 10_000
DEFAULT_SEED = 0
FORMAT = 1


@dataclass(frozen=True, slots=True, eq=False)
class ReferenceSample:
    """Rows of the reference as values, not bins: KS and Wasserstein need them.

    Columns in `canonical` form: float64 with NaN for numeric, objects (str or None) otherwise.
    """

    columns: Mapping[str, np.ndarray]
    predictions: np.ndarray | None = None

    @property
    def rows(self) -> int:
        first = next(iter(self.columns.values()), self.predictions)
        return 0 if first is None else len(first)

    def to_bytes(self) -> bytes:
        arrays = {"names": np.array(list(self.columns), dtype=str)}
        for i, values in enumerate(self.columns.values()):
            arrays |= _encode(f"column{i}", values)
        if self.predictions is not None:
            arrays |= _encode("predictions", self.predictions)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ReferenceSample:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as stored:
                names = stored["names"].tolist()
                columns = {name: _decode(stored, f"column{i}") for i, name in enumerate(names)}
                predictions = _decode(stored, "predictions") if "predictions" in stored else None
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"not a reference sample: {exc}") from exc
        return cls(columns, predictions)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReferenceSample):
            return NotImplemented
        if list(self.columns) != list(other.columns):
            return False
        pairs = [(self.columns[name], other.columns[name]) for name in self.columns]
        pairs.append((_or_empty(self.predictions), _or_empty(other.predictions)))
        return (self.predictions is None) == (other.predictions is None) and all(
            a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
            for a, b in pairs
        )


def _encode(key: str, values: np.ndarray) -> dict[str, np.ndarray]:
    if values.dtype.kind == "f":
        return {key: values}
    missing = np.equal(values, np.array(None, dtype=object))
    return {key: np.where(missing, "", values).astype(str), f"{key}_missing": missing}


def _decode(stored: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    values = stored[key]
    if values.dtype.kind == "f":
        return values
    out = values.astype(object)
    out[stored[f"{key}_missing"]] = None
    return out


def _or_empty(values: np.ndarray | None) -> np.ndarray:
    return np.empty(0) if values is None else values


@dataclass(frozen=True, slots=True)
class ReferenceProfile:
    """The training data reduced to what drift needs; `capture` builds one, `compare` uses it."""

    rows: int
    features: Mapping[str, ColumnSummary]
    sample: ReferenceSample
    predictions: ColumnSummary | None = None
    bins: int = DEFAULT_BINS
    max_sample_rows: int = DEFAULT_SAMPLE_ROWS
    seed: int = DEFAULT_SEED

    def to_dict(self) -> dict[str, JsonValue]:
        """The summaries as JSON; the sample is stored apart, as `ReferenceSample.to_bytes`."""
        return {
            "format": FORMAT,
            "rows": self.rows,
            "bins": self.bins,
            "sample": {
                "rows": self.sample.rows,
                "max_rows": self.max_sample_rows,
                "seed": self.seed,
            },
            "features": {name: s.to_dict() for name, s in self.features.items()},
            "predictions": None if self.predictions is None else self.predictions.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, JsonValue], sample: ReferenceSample) -> ReferenceProfile:
        """Rebuilt from `to_dict` and the sample stored beside it, which must belong to it."""
        try:
            settings, features, predictions = data["sample"], data["features"], data["predictions"]
            if data["format"] != FORMAT or not isinstance(settings, dict):
                raise ValueError(f"format {data['format']!r} is not {FORMAT}")
            if not isinstance(features, dict) or not isinstance(predictions, dict | None):
                raise TypeError("features and predictions are objects")
            profile = cls(
                rows=_int(data["rows"]),
                features={
                    name: ColumnSummary.from_dict(_object(s)) for name, s in features.items()
                },
                sample=sample,
                predictions=None if predictions is None else ColumnSummary.from_dict(predictions),
                bins=_int(data["bins"]),
                max_sample_rows=_int(settings["max_rows"]),
                seed=_int(settings["seed"]),
            )
            sample_rows = _int(settings["rows"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a reference profile: {exc!r}") from exc
        if list(sample.columns) != list(features) or sample.rows != sample_rows:
            raise ValueError("the sample does not belong to this profile")
        if (sample.predictions is None) != (predictions is None):
            raise ValueError("the sample does not belong to this profile")
        return profile


def _int(value: JsonValue) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"not an integer: {value!r}")
    return value


def _object(value: JsonValue) -> dict[str, JsonValue]:
    if not isinstance(value, dict):
        raise TypeError(f"not an object: {value!r}")
    return value


def capture(
    columns: Mapping[str, np.ndarray],
    predictions: np.ndarray | None = None,
    *,
    kinds: Mapping[str, FeatureKind] | None = None,
    prediction_kind: FeatureKind | None = None,
    bins: int = DEFAULT_BINS,
    max_sample_rows: int = DEFAULT_SAMPLE_ROWS,
    seed: int = DEFAULT_SEED,
) -> ReferenceProfile:
    """The profile of a reference data set (and its predictions): summaries of every row, and a
    sample of at most `max_sample_rows` rows drawn without replacement with `seed`.

    A column's kind comes from its dtype (`infer_kind`) unless `kinds` names it; predictions
    are numeric only when floats: integers, like strings, are class labels.
    """
    arrays, predicted = _columns(columns, predictions)
    rows = _rows(arrays, predicted)
    if rows == 0:
        raise InvalidInputError("a reference profile needs at least one row")
    if max_sample_rows < 1:
        raise ValueError(f"max_sample_rows must be at least 1, not {max_sample_rows}")
    unknown = set(kinds or {}) - set(arrays)
    if unknown:
        raise InvalidInputError(f"kinds name columns the data does not have: {sorted(unknown)}")
    chosen = {name: (kinds or {}).get(name) or _kind(name, a) for name, a in arrays.items()}
    index = _sample_index(rows, max_sample_rows, seed)
    summaries, sample = {}, {}
    for name, values in arrays.items():
        with _pointing_at(_pointer(name)):
            summaries[name] = ColumnSummary.of(values, chosen[name], bins)
            sample[name] = canonical(values[index], chosen[name])
    summary, sampled = None, None
    if predicted is not None:
        kind = prediction_kind or _prediction_kind(predicted)
        with _pointing_at("/predictions"):
            summary = ColumnSummary.of(predicted, kind, bins)
            sampled = canonical(predicted[index], kind)
    return ReferenceProfile(
        rows, summaries, ReferenceSample(sample, sampled), summary, bins, max_sample_rows, seed
    )


def _sample_index(rows: int, cap: int, seed: int) -> np.ndarray:
    """Every row up to `cap`; beyond, `cap` rows without replacement, in their original order."""
    if rows <= cap:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, cap, replace=False))


@dataclass(frozen=True, slots=True)
class DriftReport:
    """A window of traffic against a reference profile: per feature, predictions, data set."""

    rows: int
    reference_rows: int
    features: Mapping[str, FeatureDrift]
    dataset: DatasetDrift
    predictions: FeatureDrift | None = None
    absent_features: tuple[str, ...] = ()
    """In the profile but not in the window: not compared."""
    unknown_features: tuple[str, ...] = ()
    """In the window but not in the profile: nothing to compare with."""

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return tuple(name for name, drift in self.features.items() if drift.drifted)

    def to_dict(self) -> dict[str, JsonValue]:
        """JSON-able; a statistic that came out infinite or NaN is null."""
        return {
            "rows": self.rows,
            "reference_rows": self.reference_rows,
            "dataset": self.dataset.to_dict(),
            "features": {name: drift.to_dict() for name, drift in self.features.items()},
            "predictions": None if self.predictions is None else self.predictions.to_dict(),
            "drifted_features": list(self.drifted_features),
            "absent_features": list(self.absent_features),
            "unknown_features": list(self.unknown_features),
        }


def compare(
    profile: ReferenceProfile,
    current_columns: Mapping[str, np.ndarray],
    current_predictions: np.ndarray | None = None,
    *,
    share: float = 0.5,
) -> DriftReport:
    """`column_drift` of every feature the window and the profile share, and of the
    predictions when both have them; the data set drifts when `share` of the features do."""
    arrays, predicted = _columns(current_columns, current_predictions)
    rows = _rows(arrays, predicted)
    if rows == 0:
        raise InvalidInputError("a drift report needs at least one row")
    features = {}
    for name, summary in profile.features.items():
        if name in arrays:
            with _pointing_at(_pointer(name)):
                features[name] = drift_against(summary, profile.sample.columns[name], arrays[name])
    predictions = None
    if (
        profile.predictions is not None
        and profile.sample.predictions is not None
        and predicted is not None
    ):
        with _pointing_at("/predictions"):
            predictions = drift_against(profile.predictions, profile.sample.predictions, predicted)
    return DriftReport(
        rows=rows,
        reference_rows=profile.rows,
        features=features,
        dataset=dataset_drift(features.values(), share),
        predictions=predictions,
        absent_features=tuple(name for name in profile.features if name not in arrays),
        unknown_features=tuple(name for name in arrays if name not in profile.features),
    )


def _columns(
    columns: Mapping[str, np.ndarray], predictions: np.ndarray | None
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Arrays of one dimension; predictions of shape (n, 1) flattened."""
    arrays = {name: np.asarray(values) for name, values in columns.items()}
    for name, values in arrays.items():
        if values.ndim != 1:
            raise InvalidInputError(
                f"column {name!r} has shape {values.shape}, not (rows,)", pointer=_pointer(name)
            )
    if predictions is None:
        return arrays, None
    predicted = np.asarray(predictions)
    if predicted.ndim == 2 and predicted.shape[1] == 1:
        predicted = predicted[:, 0]
    if predicted.ndim != 1:
        raise InvalidInputError(
            f"predictions have shape {predicted.shape}, not (rows,) or (rows, 1)",
            pointer="/predictions",
        )
    return arrays, predicted


def _rows(arrays: Mapping[str, np.ndarray], predictions: np.ndarray | None) -> int:
    lengths = {name: len(values) for name, values in arrays.items()}
    if predictions is not None:
        lengths["predictions"] = len(predictions)
    if len(set(lengths.values())) > 1:
        raise InvalidInputError(f"columns differ in length: {lengths}")
    return next(iter(lengths.values()), 0)


def _kind(name: str, values: np.ndarray) -> FeatureKind:
    with _pointing_at(_pointer(name)):
        return infer_kind(values)


def _prediction_kind(values: np.ndarray) -> FeatureKind:
    if values.dtype.kind == "f":
        return FeatureKind.NUMERIC
    with _pointing_at("/predictions"):
        infer_kind(values)
    return FeatureKind.CATEGORICAL


def _pointer(name: str) -> str:
    """JSON pointer to a column (RFC 6901 escapes)."""
    return "/columns/" + name.replace("~", "~0").replace("/", "~1")


@contextmanager
def _pointing_at(pointer: str) -> Iterator[None]:
    """A column the statistics cannot read is the caller's input at fault: 422, pointing at it."""
    try:
        yield
    except ValueError as exc:
        raise InvalidInputError(str(exc), pointer=pointer) from exc
