"""Model signatures: what a model takes and returns, inferred from a sample, enforced on input.

A signature is either a *tensor* signature (one 2-D input, features by position) or a
*columns* signature (named, possibly mixed-type 1-D columns, e.g. a DataFrame). Codecs turn
wire data into ``name -> array``; :meth:`Signature.conform` checks and coerces those arrays
into a :class:`Batch` or raises an error that points at the offending field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np

from modelport.errors import FieldError, InvalidInputError, MalformedRequestError
from modelport.runtimes.batch import Batch

NUMERIC_DTYPES = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
)
STRING = "string"
MAX_LISTED_ERRORS = 20
"""Errors listed in one answer: a body with 100k unknown inputs must not get a 10 MB reply."""


class SignatureKind(StrEnum):
    TENSOR = "tensor"
    COLUMNS = "columns"


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One input or output: name, element dtype, shape (-1 = any), whether NaN/None is allowed."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nullable: bool = False

    @property
    def numpy_dtype(self) -> np.dtype[Any]:
        return np.dtype(object) if self.dtype == STRING else np.dtype(self.dtype)

    @property
    def width(self) -> int:
        """Number of features per row (1 for a column)."""
        return int(np.prod(self.shape[1:])) if len(self.shape) > 1 else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "nullable": self.nullable,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorSpec:
        return cls(data["name"], data["dtype"], tuple(data["shape"]), bool(data.get("nullable")))


@dataclass(frozen=True, slots=True)
class Signature:
    kind: SignatureKind
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...] = field(default=())

    def input_names(self) -> list[str]:
        return [spec.name for spec in self.inputs]

    def output_name(self, requested: str | None) -> str:
        """The output a client asked for (checked before the model runs), or the first one."""
        if requested is None:
            return self.outputs[0].name
        names = [spec.name for spec in self.outputs]
        if requested not in names:
            raise InvalidInputError(
                f"unknown output {requested!r}; this model returns {', '.join(names)}",
                pointer="/output",
            )
        return requested

    def allowing_missing(self) -> Signature:
        """The same signature with every numeric (not boolean) input nullable."""
        inputs = tuple(
            replace(spec, nullable=True)
            if spec.dtype != STRING and spec.numpy_dtype.kind in "iuf"
            else spec
            for spec in self.inputs
        )
        return Signature(self.kind, inputs, self.outputs)

    def with_outputs(self, outputs: Mapping[str, np.ndarray]) -> Signature:
        specs = tuple(_spec_for(name, np.asarray(a), nullable=False) for name, a in outputs.items())
        return Signature(self.kind, self.inputs, specs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "inputs": [s.to_dict() for s in self.inputs],
            "outputs": [s.to_dict() for s in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        return cls(
            SignatureKind(data["kind"]),
            tuple(TensorSpec.from_dict(s) for s in data["inputs"]),
            tuple(TensorSpec.from_dict(s) for s in data.get("outputs", [])),
        )

    def conform(
        self, arrays: Mapping[str, np.ndarray], pointers: Mapping[str, str] | None = None
    ) -> Batch:
        """Check ``arrays`` against the inputs and coerce dtypes; the result is a Batch.

        ``pointers`` maps an input name to the JSON pointer of the field that carried it, so
        errors name what the client actually sent.
        """
        pointers = pointers or {}
        if len(arrays) != len(self.inputs) or not all(s.name in arrays for s in self.inputs):
            self._check_names(arrays, pointers)
        first = self.inputs[0].name if self.inputs else ""
        if all(_rows(array) == (0,) for array in arrays.values()):
            # checked before dtypes: an empty JSON list has no dtype worth complaining about
            raise InvalidInputError(
                "the batch is empty: send at least one row",
                pointer=pointers.get(first, f"/{first}"),
            )
        columns: dict[str, np.ndarray] = {}
        n_rows: int | None = None
        for spec in self.inputs:
            pointer = pointers.get(spec.name, f"/{spec.name}")
            array = _coerce(spec, arrays[spec.name], pointer)
            if n_rows is not None and array.shape[0] != n_rows:
                raise InvalidInputError(
                    f"input {spec.name!r} has {array.shape[0]} rows, others have {n_rows}",
                    pointer=pointer,
                )
            n_rows = array.shape[0]
            columns[spec.name] = array
        assert n_rows is not None
        return Batch(columns, n_rows)

    def _check_names(self, arrays: Mapping[str, np.ndarray], pointers: Mapping[str, str]) -> None:
        """422 listing unknown and missing inputs, if there are any."""
        names = {s.name for s in self.inputs}
        unknown = [name for name in arrays if name not in names]
        missing = [s.name for s in self.inputs if s.name not in arrays]
        if unknown or missing:
            errors = [FieldError(pointers.get(n, f"/{n}"), f"unknown input {n!r}") for n in unknown]
            errors += [FieldError(f"/{n}", f"missing input {n!r}") for n in missing]
            expected = _listed(self.input_names())
            shown = errors[:MAX_LISTED_ERRORS]
            more = (
                f" ({len(errors)} problems in all, the first {len(shown)} listed)"
                if len(errors) > len(shown)
                else ""
            )
            raise InvalidInputError(
                f"inputs do not match the signature (expected: {expected}); "
                + "; ".join(e.message for e in shown)
                + more,
                errors=shown,
            )


def _rows(array: np.ndarray) -> tuple[int, ...]:
    """The first dimension of ``array`` as a 0- or 1-tuple (anything array-like)."""
    shape = array.shape if isinstance(array, np.ndarray) else np.shape(array)
    return shape[:1]


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED_ERRORS])
    return shown if len(names) <= MAX_LISTED_ERRORS else f"{shown}, ... ({len(names)} in all)"


def _coerce(spec: TensorSpec, array: np.ndarray, pointer: str) -> np.ndarray:
    expected_ndim = len(spec.shape)
    if array.ndim == 1 and expected_ndim == 2 and spec.width == array.shape[0]:
        array = array.reshape(1, -1)  # a single row sent without its batch dimension
    if array.ndim != expected_ndim:
        raise InvalidInputError(
            f"input {spec.name!r} must have {expected_ndim} dimensions "
            f"{_shape_text(spec.shape)}, got shape {list(array.shape)}",
            pointer=pointer,
        )
    if spec.shape[1:] != array.shape[1:]:  # else the usual case: nothing to check by axis
        _check_axes(spec, array, pointer)
    if spec.dtype == STRING:
        return _coerce_strings(spec, array, pointer)
    return _coerce_numeric(spec, array, pointer)


def _check_axes(spec: TensorSpec, array: np.ndarray, pointer: str) -> None:
    for axis, (want, got) in enumerate(zip(spec.shape[1:], array.shape[1:], strict=True), 1):
        if want != -1 and want != got:
            raise InvalidInputError(
                f"input {spec.name!r} expects {want} values on axis {axis} "
                f"{_shape_text(spec.shape)}, got {got}",
                pointer=pointer,
            )


_NUMPY_DTYPES = {name: np.dtype(name) for name in NUMERIC_DTYPES}


def _coerce_numeric(spec: TensorSpec, array: np.ndarray, pointer: str) -> np.ndarray:
    target = _NUMPY_DTYPES.get(spec.dtype) or np.dtype(spec.dtype)
    kind = array.dtype.kind
    if kind == "O":
        array = _objects_to_numeric(spec, array, pointer)
        kind = array.dtype.kind
    if kind in "US" or (kind == "b" and target.kind != "b"):
        got = "strings" if kind in "US" else "booleans"
        raise InvalidInputError(
            f"input {spec.name!r} expects {spec.dtype} values, got {got}", pointer=pointer
        )
    if kind not in "biuf":
        raise InvalidInputError(f"input {spec.name!r} expects {spec.dtype} values", pointer=pointer)
    if kind == "f" and target.kind != "f":
        if not spec.nullable and not np.all(np.isfinite(array)):
            raise InvalidInputError(
                f"input {spec.name!r} must not contain NaN or infinity", pointer=pointer
            )
        if not np.all(np.isnan(array) | (np.mod(array, 1) == 0)):
            raise InvalidInputError(
                f"input {spec.name!r} expects integers, got fractions", pointer=pointer
            )
        _check_range(spec, array, target, pointer)
        if np.isnan(array).any():
            return array  # nullable integer column: keep NaN as float, as pandas would
    elif kind in "iu" and target.kind in "iu":
        _check_range(spec, array, target, pointer)
    if target.kind == "b" and kind != "b" and not np.isin(array, (0, 1)).all():
        raise InvalidInputError(
            f"input {spec.name!r} expects booleans (true/false or 0/1)", pointer=pointer
        )  # astype(bool) would make 2 True
    result = array.astype(target, copy=False)
    if target.kind == "f" and not spec.nullable and not np.isfinite(result).all():
        raise InvalidInputError(
            f"input {spec.name!r} must not contain NaN or infinity", pointer=pointer
        )
    return result


def _check_range(spec: TensorSpec, array: np.ndarray, target: np.dtype[Any], pointer: str) -> None:
    """Refuse values a narrower integer dtype would silently wrap around."""
    values = array[np.isfinite(array)] if array.dtype.kind == "f" else array
    if values.size == 0:
        return
    info = np.iinfo(target)
    low, high = int(values.min()), int(values.max())
    if low < info.min or high > info.max:
        bad = low if low < info.min else high
        raise InvalidInputError(
            f"input {spec.name!r} expects {spec.dtype} values in "
            f"[{info.min}, {info.max}], got {bad}",
            pointer=pointer,
        )


def _objects_to_numeric(spec: TensorSpec, array: np.ndarray, pointer: str) -> np.ndarray:
    """JSON ``null`` arrives as None in an object array: NaN if the input allows it."""
    flat = array.ravel()
    has_none = any(v is None for v in flat)
    if has_none and not spec.nullable:
        raise InvalidInputError(
            f"input {spec.name!r} must not contain null values", pointer=pointer
        )
    if any(isinstance(v, str | bytes | bool) for v in flat):
        raise InvalidInputError(
            f"input {spec.name!r} expects {spec.dtype} values, got strings or booleans",
            pointer=pointer,
        )
    try:
        return np.array([np.nan if v is None else v for v in flat], dtype=np.float64).reshape(
            array.shape
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"input {spec.name!r} expects {spec.dtype} values", pointer=pointer
        ) from exc


def _coerce_strings(spec: TensorSpec, array: np.ndarray, pointer: str) -> np.ndarray:
    if array.dtype.kind in "US":
        return array.astype(object)
    if array.dtype.kind == "O":
        bad = [
            v for v in array.ravel() if not (isinstance(v, str) or (v is None and spec.nullable))
        ]
        if bad:
            raise InvalidInputError(
                f"input {spec.name!r} expects strings, got {bad[0]!r}", pointer=pointer
            )
        return array
    raise InvalidInputError(f"input {spec.name!r} expects strings, got numbers", pointer=pointer)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join("N" if d == -1 else str(d) for d in shape) + "]"


def _dtype_name(array: np.ndarray) -> str:
    kind = array.dtype.kind
    if kind in "USO":
        return STRING
    if kind == "b" or kind in "iuf":
        return str(array.dtype)
    raise InvalidInputError(f"unsupported sample dtype {array.dtype}")


def _has_missing(array: np.ndarray) -> bool:
    if array.dtype.kind == "f":
        return bool(np.isnan(array).any())
    if array.dtype.kind == "O":
        return any(v is None or (isinstance(v, float) and np.isnan(v)) for v in array.ravel())
    return False


def _spec_for(name: str, array: np.ndarray, nullable: bool | None) -> TensorSpec:
    shape = (-1, *array.shape[1:])
    return TensorSpec(
        name, _dtype_name(array), shape, _has_missing(array) if nullable is None else nullable
    )


TENSOR_INPUT = "input"


def sample_arrays(sample: Any) -> tuple[SignatureKind, dict[str, np.ndarray]]:
    """A sample (ndarray, list of rows, DataFrame or dict of columns) as named arrays."""
    if hasattr(sample, "dtypes") and hasattr(sample, "columns"):  # a pandas DataFrame
        return SignatureKind.COLUMNS, {str(c): _frame_column(sample[c]) for c in sample.columns}
    if isinstance(sample, Mapping):
        return SignatureKind.COLUMNS, {
            str(k): _numbers_if_numeric(_sample_array(v, f"/{k}")) for k, v in sample.items()
        }
    array = _sample_array(sample, "")
    if array.ndim != 2:
        raise MalformedRequestError(
            f"a sample input must be 2-D (rows x features), got shape {list(array.shape)}"
        )
    return SignatureKind.TENSOR, {TENSOR_INPUT: array}


def _sample_array(values: Any, pointer: str) -> np.ndarray:
    """``np.asarray``, with numpy's refusals (ragged rows, more than 64 levels of nesting)
    reported as the client's malformed input rather than a crash."""
    try:
        return np.asarray(values)
    except ValueError as exc:
        raise MalformedRequestError(
            f"the sample is not a rectangular array: {exc}", pointer=pointer or None
        ) from exc


def infer_signature(sample: Any, *, allow_missing: bool | None = None) -> Signature:
    """Infer the input side of a signature from a sample.

    ``allow_missing`` overrides what the sample shows about NaN / None being acceptable.
    """
    kind, arrays = sample_arrays(sample)
    specs = []
    for name, array in arrays.items():
        if kind is SignatureKind.COLUMNS and array.ndim != 1:
            raise MalformedRequestError(f"sample column {name!r} must be 1-D")
        specs.append(_spec_for(name, array, allow_missing))
    return Signature(kind, tuple(specs))


def _frame_column(series: Any) -> np.ndarray:
    dtype = series.dtype
    if hasattr(dtype, "numpy_dtype") and dtype.kind in "biuf":
        # pandas' nullable Int64 / Float64 / boolean: pd.NA becomes NaN, as for float columns
        if series.hasnans:
            return np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan))
        return np.asarray(series.to_numpy(dtype=dtype.numpy_dtype))
    if str(dtype) in ("category", "string", "str") or dtype.kind == "O":
        values = np.asarray(series.astype(object).where(series.notna(), None), dtype=object)
        return _numbers_if_numeric(values)
    return np.asarray(series.to_numpy())


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float | np.floating) and bool(np.isnan(value)))


def _numbers_if_numeric(array: np.ndarray) -> np.ndarray:
    """An object array of numbers and missing values (JSON null, a numeric category) as numbers.

    Without this, ``{"x": [1.5, None]}`` would be inferred as a string column.
    """
    if array.dtype.kind != "O":
        return array
    present = [v for v in array.ravel() if not _is_missing(v)]
    if not present or not all(
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_)
        for v in present
    ):
        return array
    if len(present) < array.size:
        return np.array(
            [np.nan if _is_missing(v) else v for v in array.ravel()], dtype=np.float64
        ).reshape(array.shape)
    return np.array(array.tolist())
