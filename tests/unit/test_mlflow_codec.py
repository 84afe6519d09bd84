"""MLflow body decoding: Content-Type rules, the four JSON formats, CSV, and where errors point."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelport.codecs.json import JsonBody
from modelport.codecs.mlflow import (
    BodyFormat,
    Parsed,
    Place,
    body_format,
    decode_csv,
    decode_json,
    decode_parquet,
)
from modelport.errors import InvalidInputError, MalformedRequestError, UnsupportedMediaTypeError
from modelport.runtimes.signature import Signature, SignatureKind, TensorSpec

TENSOR = Signature(SignatureKind.TENSOR, (TensorSpec("input", "float64", (-1, 4)),))
COLUMNS = Signature(
    SignatureKind.COLUMNS,
    (
        TensorSpec("age", "int64", (-1,)),
        TensorSpec("income", "float64", (-1,)),
        TensorSpec("city", "string", (-1,)),
    ),
)
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
RECORDS = [
    {"age": 31, "income": 1500.5, "city": "paris"},
    {"age": 45, "income": 2200.0, "city": "75001"},
]
MIXED_ROWS = [[31, 1500.5, "paris"], [45, 2200.0, "75001"]]


def decode(payload: dict[str, Any], signature: Signature) -> Parsed:
    return decode_json(JsonBody(payload, has_booleans=False), signature)


def refused(payload: Any, signature: Signature = COLUMNS) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        decode(payload, signature)
    return caught.value


def assert_mixed(decoded: Parsed) -> None:
    """The two example rows, each column with its own type (numbers stay numbers)."""
    batch = COLUMNS.conform(decoded.arrays)
    assert batch.columns["age"].tolist() == [31, 45]
    assert batch.columns["age"].dtype == np.int64
    assert batch.columns["income"].tolist() == [1500.5, 2200.0]
    assert batch.columns["city"].tolist() == ["paris", "75001"]


# -- Content-Type ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", BodyFormat.JSON),
        ("application/json; charset=utf-8", BodyFormat.JSON),
        ("Application/JSON;charset=UTF-8", BodyFormat.JSON),
        ('application/json; charset="utf-8"', BodyFormat.JSON),
        ("text/csv", BodyFormat.CSV),
        ("application/csv; charset=utf-8", BodyFormat.CSV),
        ("application/vnd.apache.parquet", BodyFormat.PARQUET),
    ],
)
def test_accepted_content_types(content_type: str, expected: BodyFormat) -> None:
    assert body_format(content_type) is expected


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        (None, "send a Content-Type header"),
        ("", "send a Content-Type header"),
        ("text/plain", "unsupported Content-Type 'text/plain'"),
        ("application/x-www-form-urlencoded", "unsupported Content-Type"),
        ("application/jsonlines", "unsupported Content-Type"),
        ("application/json; charset=latin-1", "unsupported charset 'latin-1'"),
        ("text/csv; charset=utf-16", "unsupported charset"),
        ("application/json; format=pandas-split", "parameter 'format=pandas-split'"),
    ],
)
def test_refused_content_types(content_type: str | None, message: str) -> None:
    with pytest.raises(UnsupportedMediaTypeError, match=message):
        body_format(content_type)


# -- JSON formats onto a tensor signature ------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"dataframe_split": {"data": ROWS}},
        {"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": ROWS, "index": [7, 8]}},
        {"dataframe_split": {"columns": [0, 1, 2, 3], "data": ROWS}},
        {"dataframe_records": [dict(zip("abcd", row, strict=True)) for row in ROWS]},
        {"instances": ROWS},
        {"inputs": ROWS},
        {"inputs": {"input": ROWS}},
    ],
    ids=[
        "split",
        "split-columns",
        "split-unnamed",
        "records",
        "instances",
        "inputs",
        "inputs-named",
    ],
)
def test_tensor_formats(payload: dict[str, Any]) -> None:
    batch = TENSOR.conform(decode(payload, TENSOR).arrays)
    np.testing.assert_array_equal(batch.columns["input"], np.array(ROWS))


def test_tensor_split_columns_must_name_every_feature() -> None:
    error = refused({"dataframe_split": {"columns": ["a", "b"], "data": ROWS}}, TENSOR)
    assert type(error) is InvalidInputError
    assert error.pointer == "/dataframe_split/columns"
    assert "takes 4 features per row" in error.detail


# -- JSON formats onto a columns signature -----------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"dataframe_split": {"columns": ["age", "income", "city"], "data": MIXED_ROWS}},
        {
            "dataframe_split": {
                "columns": ["city", "age", "income"],
                "data": [[r[2], r[0], r[1]] for r in MIXED_ROWS],
            }
        },
        {"dataframe_split": {"data": MIXED_ROWS}},
        {"dataframe_records": RECORDS},
        {"dataframe_records": [RECORDS[0], dict(reversed(RECORDS[1].items()))]},
        {"instances": RECORDS},
        {"instances": MIXED_ROWS},
        {"inputs": {"age": [31, 45], "income": [1500.5, 2200.0], "city": ["paris", "75001"]}},
        {"inputs": MIXED_ROWS},
    ],
    ids=[
        "split",
        "split-reordered",
        "split-positional",
        "records",
        "records-key-order",
        "instances-records",
        "instances-rows",
        "inputs-columns",
        "inputs-rows",
    ],
)
def test_columns_formats(payload: dict[str, Any]) -> None:
    assert_mixed(decode(payload, COLUMNS))


def test_places_name_the_cell_of_each_row() -> None:
    records = decode({"dataframe_records": RECORDS}, COLUMNS).places
    assert records["age"].row(3) == "/dataframe_records/3/age"
    split = decode(
        {"dataframe_split": {"columns": ["city", "age", "income"], "data": [["x", 1, 2.0]]}},
        COLUMNS,
    ).places
    assert split["age"].row(5) == "/dataframe_split/data/5/1"
    columns = decode({"inputs": {"a/b": [1]}}, COLUMNS).places
    assert columns["a/b"] == Place("/inputs/a~1b")
    assert columns["a/b"].row(2) == "/inputs/a~1b/2"
    flat = decode({"instances": [31, 1.5, "x"]}, COLUMNS).places
    assert flat["income"].row(0) == "/instances/1"


def test_booleans_in_numeric_rows_are_kept_for_the_signature_to_refuse() -> None:
    payload = {"dataframe_split": {"data": [[5.1, True, 1.4, 0.2]]}}
    decoded = decode_json(JsonBody(payload, has_booleans=True), TENSOR)
    with pytest.raises(InvalidInputError, match="booleans"):
        TENSOR.conform(decoded.arrays)


# -- params ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "output", "ignored"),
    [
        (None, None, ()),
        ({"output": "probabilities"}, "probabilities", ()),
        ({"output": "label", "temperature": 0.1, "top_k": 3}, "label", ("temperature", "top_k")),
        ("x", None, ("params",)),
    ],
)
def test_params(params: Any, output: str | None, ignored: tuple[str, ...]) -> None:
    payload: dict[str, Any] = {"inputs": ROWS}
    if params is not None:
        payload["params"] = params
    decoded = decode(payload, TENSOR)
    assert (decoded.output, decoded.ignored_params) == (output, ignored)


# -- malformed bodies -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "pointer", "message"),
    [
        ({}, "", "exactly one of dataframe_split"),
        ({"data": ROWS}, "", "got keys: data"),
        ({"instances": ROWS, "inputs": ROWS}, "", "got keys: instances, inputs"),
        ({"dataframe_split": ROWS}, "/dataframe_split", "must be an object"),
        (
            {"dataframe_split": {"data": ROWS, "dtype": "x"}},
            "/dataframe_split/dtype",
            "only columns, data and index",
        ),
        ({"dataframe_split": {"columns": ["age"]}}, "/dataframe_split/data", "non-empty list"),
        ({"dataframe_split": {"data": []}}, "/dataframe_split/data", "non-empty list"),
        ({"dataframe_split": {"data": [[1], 2]}}, "/dataframe_split/data/1", "must be a list"),
        (
            {"dataframe_split": {"data": MIXED_ROWS, "index": [0]}},
            "/dataframe_split/index",
            "one entry per row",
        ),
        (
            {"dataframe_split": {"columns": "age", "data": MIXED_ROWS}},
            "/dataframe_split/columns",
            "list of column names",
        ),
        (
            {"dataframe_split": {"columns": ["age", "age", "city"], "data": MIXED_ROWS}},
            "/dataframe_split/columns",
            "twice",
        ),
        (
            {"dataframe_split": {"columns": ["age", True, "city"], "data": MIXED_ROWS}},
            "/dataframe_split/columns",
            "list of column names",
        ),
        (
            {"dataframe_split": {"columns": ["age", "income", "city"], "data": [[1, 2.0]]}},
            "/dataframe_split/data/0",
            "2 values for 3 columns",
        ),
        ({"dataframe_records": {"age": [1]}}, "/dataframe_records", "non-empty list"),
        (
            {"dataframe_records": [RECORDS[0], [1, 2.0, "x"]]},
            "/dataframe_records/1",
            "must be an object",
        ),
        ({"dataframe_records": [RECORDS[0], {"age": 1}]}, "/dataframe_records/1", "has keys"),
        ({"instances": []}, "/instances", "non-empty list"),
        ({"inputs": "x"}, "/inputs", "non-empty list"),
        ({"inputs": ROWS, "params": {"output": 3}}, "/params/output", "must be the name"),
    ],
)
def test_malformed_json(payload: dict[str, Any], pointer: str, message: str) -> None:
    error = refused(payload)
    assert type(error) is MalformedRequestError
    assert (error.status, error.pointer) == (400, pointer)
    assert message in error.detail


def test_ragged_tensor_rows_are_malformed() -> None:
    error = refused({"dataframe_split": {"data": [[1.0, 2.0, 3.0, 4.0], [1.0]]}}, TENSOR)
    assert type(error) is MalformedRequestError
    assert error.pointer == "/dataframe_split/data"


# -- CSV and Parquet -------------------------------------------------------------------


def test_csv_by_column_name_keeps_number_like_strings() -> None:
    body = b"city,income,age\nparis,1500.5,31\n75001,2200.0,45\n"
    decoded = decode_csv(body, COLUMNS)
    assert_mixed(decoded)
    assert decoded.places["city"] == Place("/city", None)


def test_csv_onto_a_tensor_is_positional() -> None:
    body = pd.DataFrame(ROWS, columns=list("wxyz")).to_csv(index=False).encode()
    batch = TENSOR.conform(decode_csv(body, TENSOR).arrays)
    np.testing.assert_array_equal(batch.columns["input"], np.array(ROWS))


@pytest.mark.parametrize(
    "body",
    [b"", b"a,b\n1,2\n1,2,3,4\n", b"age,city\n1,\xff\xfe\n"],
    ids=["empty", "ragged", "not-utf8"],
)
def test_unparsable_csv(body: bytes) -> None:
    with pytest.raises(MalformedRequestError, match=r"^Failed to parse input as a Pandas "):
        decode_csv(body, COLUMNS)


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is not None, reason="pyarrow present")
def test_parquet_needs_pyarrow() -> None:
    with pytest.raises(UnsupportedMediaTypeError, match="need pyarrow"):
        decode_parquet(b"PAR1", COLUMNS)


def test_parquet_by_column_name() -> None:
    pytest.importorskip("pyarrow")
    body = pd.DataFrame(RECORDS).to_parquet()
    assert_mixed(decode_parquet(body, COLUMNS))
    with pytest.raises(MalformedRequestError, match="Failed to parse"):
        decode_parquet(b"not parquet", COLUMNS)
