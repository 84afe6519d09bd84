"""Signatures: inference from samples, and ``conform`` turning bad input into pointed 4xx errors."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelport.errors import InvalidInputError, MalformedRequestError
from modelport.runtimes.signature import (
    Signature,
    SignatureKind,
    TensorSpec,
    infer_signature,
    sample_arrays,
)

TENSOR = Signature(SignatureKind.TENSOR, (TensorSpec("input", "float64", (-1, 4)),))
NULLABLE_TENSOR = Signature(
    SignatureKind.TENSOR, (TensorSpec("input", "float64", (-1, 4), nullable=True),)
)
COLUMNS = Signature(
    SignatureKind.COLUMNS,
    (
        TensorSpec("age", "int64", (-1,)),
        TensorSpec("income", "float64", (-1,), nullable=True),
        TensorSpec("city", "string", (-1,)),
        TensorSpec("note", "string", (-1,), nullable=True),
    ),
)
POINTERS = {
    "age": "/inputs/0/data",
    "income": "/inputs/1/data",
    "city": "/inputs/2/data",
    "note": "/inputs/3/data",
}


def good_columns(**overrides: Any) -> dict[str, np.ndarray]:
    columns = {
        "age": np.array([31, 45]),
        "income": np.array([1.5, np.nan]),
        "city": np.array(["paris", "nice"]),
        "note": np.array(["x", None], dtype=object),
    }
    columns.update({k: np.asarray(v) for k, v in overrides.items()})
    return columns


def rejected(
    signature: Signature, arrays: dict[str, Any], pointers: dict[str, str] | None = None
) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        signature.conform({k: np.asarray(v) for k, v in arrays.items()}, pointers)
    return caught.value


# -- inference ---------------------------------------------------------------------------


def test_infer_from_ndarray() -> None:
    sig = infer_signature(np.arange(12, dtype=np.float64).reshape(3, 4))
    assert sig == TENSOR
    assert sig.kind is SignatureKind.TENSOR
    assert sig.input_names() == ["input"]


def test_infer_from_ndarray_keeps_dtype_and_sees_nan() -> None:
    ints = infer_signature(np.ones((2, 3), dtype=np.int32))
    assert ints.inputs == (TensorSpec("input", "int32", (-1, 3)),)
    with_nan = infer_signature(np.array([[1.0, np.nan], [2.0, 3.0]]))
    assert with_nan.inputs[0].nullable is True
    assert infer_signature(np.ones((2, 2)), allow_missing=True).inputs[0].nullable is True
    assert infer_signature(np.array([[np.nan]]), allow_missing=False).inputs[0].nullable is False


def test_infer_from_list_of_rows() -> None:
    assert infer_signature([[1.0, 2.0, 3.0, 4.0]]) == TENSOR


@pytest.mark.parametrize("sample", [np.ones(4), np.ones((2, 2, 2)), 3.0])
def test_infer_rejects_non_2d_tensor_samples(sample: Any) -> None:
    with pytest.raises(MalformedRequestError):
        infer_signature(sample)


def test_infer_from_mixed_dataframe() -> None:
    frame = pd.DataFrame(
        {
            "age": np.array([31, 45, 52], dtype=np.int64),
            "income": [1.5, np.nan, 3.0],
            "score": np.array([0.5, 0.25, 1.0], dtype=np.float32),
            "city": ["paris", "lyon", "nice"],
            "note": ["x", None, "z"],
            "tier": pd.Categorical(["gold", "silver", "gold"]),
            "rank": pd.Categorical([1, 2, None]),
            "active": [True, False, True],
            "count": pd.array([1, 2, 3], dtype="Int64"),
            "count_na": pd.array([1, None, 3], dtype="Int64"),
            "flag_na": pd.array([True, None, False], dtype="boolean"),
        }
    )
    specs = {s.name: s for s in infer_signature(frame).inputs}
    assert infer_signature(frame).kind is SignatureKind.COLUMNS
    assert list(specs) == list(frame.columns)
    assert all(s.shape == (-1,) for s in specs.values())
    got = {name: (s.dtype, s.nullable) for name, s in specs.items()}
    assert got == {
        "age": ("int64", False),
        "income": ("float64", True),
        "score": ("float32", False),
        "city": ("string", False),
        "note": ("string", True),
        "tier": ("string", False),
        # numeric categories stay numbers (they were inferred as strings, then refused)
        "rank": ("float64", True),
        "active": ("bool", False),
        # pandas' nullable dtypes: pd.NA is missing, not a string
        "count": ("int64", False),
        "count_na": ("float64", True),
        "flag_na": ("float64", True),
    }
    # the sample itself always passes its own signature
    batch = infer_signature(frame).conform(sample_arrays(frame)[1])
    assert batch.n_rows == 3
    assert list(batch.columns["note"]) == ["x", None, "z"]


def test_allow_missing_overrides_what_the_frame_shows() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    assert all(s.nullable for s in infer_signature(frame, allow_missing=True).inputs)
    frame_na = pd.DataFrame({"a": [1.0, np.nan]})
    assert not infer_signature(frame_na, allow_missing=False).inputs[0].nullable


def test_infer_from_dict_of_columns() -> None:
    sig = infer_signature({"a": [1, 2], "b": ["x", "y"], "c": [1.5, None], "d": [True, False]})
    assert sig.kind is SignatureKind.COLUMNS
    assert [(s.name, s.dtype, s.nullable) for s in sig.inputs] == [
        ("a", "int64", False),
        ("b", "string", False),
        # JSON-style null among numbers: a nullable number, not a string column
        ("c", "float64", True),
        ("d", "bool", False),
    ]


def test_infer_from_dict_rejects_2d_columns() -> None:
    with pytest.raises(MalformedRequestError):
        infer_signature({"a": [[1, 2], [3, 4]]})


# -- conform: what passes ------------------------------------------------------------------


def test_conform_accepts_good_tensor_input() -> None:
    batch = TENSOR.conform({"input": np.ones((3, 4))})
    assert batch.n_rows == 3
    assert batch.columns["input"].dtype == np.float64


def test_conform_coerces_ints_to_float() -> None:
    batch = TENSOR.conform({"input": np.array([[1, 2, 3, 4]], dtype=np.int64)})
    assert batch.columns["input"].dtype == np.float64
    np.testing.assert_array_equal(batch.columns["input"], [[1.0, 2.0, 3.0, 4.0]])


def test_conform_accepts_a_single_row_without_batch_dimension() -> None:
    batch = TENSOR.conform({"input": np.array([1.0, 2.0, 3.0, 4.0])})
    assert batch.n_rows == 1
    assert batch.columns["input"].shape == (1, 4)


def test_conform_accepts_whole_floats_into_int_columns() -> None:
    batch = COLUMNS.conform(good_columns(age=[31.0, 45.0]))
    assert batch.columns["age"].dtype == np.int64
    assert list(batch.columns["age"]) == [31, 45]


def test_conform_accepts_good_columns() -> None:
    batch = COLUMNS.conform(good_columns())
    assert batch.n_rows == 2
    assert batch.columns["city"].dtype == object
    assert np.isnan(batch.columns["income"][1])


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nullable_input_accepts_nan_and_inf(value: float) -> None:
    batch = NULLABLE_TENSOR.conform({"input": np.array([[value, 1.0, 2.0, 3.0]])})
    assert not np.isfinite(batch.columns["input"][0, 0])


def test_nullable_input_accepts_none_as_nan() -> None:
    batch = NULLABLE_TENSOR.conform({"input": np.array([[None, 1, 2, 3]], dtype=object)})
    assert batch.columns["input"].dtype == np.float64
    assert np.isnan(batch.columns["input"][0, 0])


# -- conform: what is refused, and where it points ------------------------------------------


def test_unknown_and_missing_inputs_are_named() -> None:
    error = rejected(
        COLUMNS,
        {"age": [1], "income": [1.0], "city": ["a"], "town": ["b"]},
        {**POINTERS, "town": "/inputs/3"},
    )
    assert {(e.pointer, e.message) for e in error.errors} == {
        ("/inputs/3", "unknown input 'town'"),
        ("/note", "missing input 'note'"),
    }
    assert error.status == 422
    assert "expected: age, income, city, note" in error.detail


def test_missing_tensor_input() -> None:
    error = rejected(TENSOR, {})
    assert [e.pointer for e in error.errors] == ["/input"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.ones((2, 3)), "expects 4 values on axis 1"),
        (np.ones((2, 5)), "expects 4 values on axis 1"),
        (np.ones(3), "must have 2 dimensions"),
        (np.ones((2, 4, 1)), "must have 2 dimensions"),
        (np.array([["a", "b", "c", "d"]]), "got strings"),
        (np.array([[1.0, "b", 2.0, 3.0]], dtype=object), "got strings"),
        (np.array([[True, False, True, False]]), "got booleans"),
        (np.array([[np.nan, 1.0, 2.0, 3.0]]), "NaN or infinity"),
        (np.array([[np.inf, 1.0, 2.0, 3.0]]), "NaN or infinity"),
        (np.array([[None, 1.0, 2.0, 3.0]], dtype=object), "null"),
    ],
)
def test_tensor_input_refused(value: np.ndarray, message: str) -> None:
    error = rejected(TENSOR, {"input": value}, {"input": "/instances"})
    assert message in error.detail
    assert error.pointer == "/instances"
    assert [e.pointer for e in error.errors] == ["/instances"]


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("age", [31.5, 45.0], "got fractions"),
        ("age", [np.nan, 45.0], "NaN or infinity"),
        ("age", [True, False], "got booleans"),
        ("age", ["31", "45"], "got strings"),
        ("age", [2**40, 1], None),  # fits int64: accepted, see test below
        ("income", [True, False], "got booleans"),
        ("income", ["1.5", "2"], "got strings"),
        ("city", [1, 2], "expects strings"),
        ("city", np.array(["paris", None], dtype=object), "expects strings"),
        ("city", np.array(["paris", 3], dtype=object), "expects strings"),
    ],
)
def test_column_input_refused(column: str, value: Any, message: str | None) -> None:
    arrays = good_columns(**{column: value})
    if message is None:
        assert COLUMNS.conform(arrays, POINTERS).n_rows == 2
        return
    error = rejected(COLUMNS, arrays, POINTERS)
    assert message in error.detail
    assert error.pointer == POINTERS[column]


def test_default_pointer_is_the_input_name() -> None:
    error = rejected(COLUMNS, good_columns(city=[1, 2]))
    assert error.pointer == "/city"


def test_rows_mismatch_across_columns_points_at_the_odd_one() -> None:
    error = rejected(COLUMNS, good_columns(income=[1.0, 2.0, 3.0]), POINTERS)
    assert error.pointer == "/inputs/1/data"
    assert "3 rows" in error.detail


@pytest.mark.parametrize(
    ("signature", "arrays", "pointer"),
    [
        (TENSOR, {"input": np.zeros((0, 4))}, "/input"),
        (TENSOR, {"input": np.array([])}, "/input"),  # JSON [] has no second axis
        # empty JSON lists decode as float arrays: "empty", not "city expects strings"
        (COLUMNS, {n: np.array([]) for n in COLUMNS.input_names()}, "/age"),
    ],
)
def test_empty_batch_is_refused(
    signature: Signature, arrays: dict[str, np.ndarray], pointer: str
) -> None:
    error = rejected(signature, arrays)
    assert "empty" in error.detail
    assert error.pointer == pointer


def test_empty_batch_uses_the_callers_pointer() -> None:
    error = rejected(COLUMNS, {n: np.array([]) for n in COLUMNS.input_names()}, POINTERS)
    assert error.pointer == "/inputs/0/data"


@pytest.mark.parametrize(
    ("dtype", "values", "bad"),
    [
        ("int8", [300, 1], "300"),
        ("uint8", [-1, 1], "-1"),
        ("uint8", [1e20, 1.0], "100000000000000000000"),
        ("int32", [2**40, 1], str(2**40)),
    ],
)
def test_integers_that_would_wrap_around_are_refused(
    dtype: str, values: list[Any], bad: str
) -> None:
    """astype() used to wrap 300 into an int8 44 without a word."""
    signature = Signature(SignatureKind.COLUMNS, (TensorSpec("x", dtype, (-1,)),))
    error = rejected(signature, {"x": values})
    assert f"got {bad}" in error.detail
    assert error.pointer == "/x"


def test_nullable_int_column_keeps_nan() -> None:
    signature = Signature(SignatureKind.COLUMNS, (TensorSpec("x", "int64", (-1,), True),))
    batch = signature.conform({"x": np.array([1.0, np.nan])})
    assert np.isnan(batch.columns["x"][1])
    with pytest.raises(InvalidInputError, match="fractions"):
        signature.conform({"x": np.array([1.5, np.nan])})


# -- serialisation -------------------------------------------------------------------------


def test_round_trip_through_json() -> None:
    sig = COLUMNS.with_outputs(
        {"label": np.array(["a", "b"]), "probabilities": np.array([[0.1, 0.9], [0.8, 0.2]])}
    )
    assert [(o.name, o.dtype, o.shape) for o in sig.outputs] == [
        ("label", "string", (-1,)),
        ("probabilities", "float64", (-1, 2)),
    ]
    restored = Signature.from_dict(json.loads(json.dumps(sig.to_dict())))
    assert restored == sig
    assert Signature.from_dict(json.loads(json.dumps(TENSOR.to_dict()))) == TENSOR


def test_from_dict_tolerates_missing_optional_keys() -> None:
    data = {"kind": "tensor", "inputs": [{"name": "input", "dtype": "float64", "shape": [-1, 4]}]}
    assert Signature.from_dict(data) == TENSOR


def test_bool_column_takes_zero_and_one_but_not_other_numbers() -> None:
    signature = Signature(SignatureKind.COLUMNS, (TensorSpec("flag", "bool", (-1,)),))
    batch = signature.conform({"flag": np.array([0, 1, 1])})
    assert batch.columns["flag"].tolist() == [False, True, True]
    with pytest.raises(InvalidInputError, match="expects booleans") as raised:
        signature.conform({"flag": np.array([0, 2])}, {"flag": "/inputs/flag"})
    assert raised.value.pointer == "/inputs/flag"
