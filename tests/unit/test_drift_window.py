"""Logged requests become drift's feature columns the same way every time: tables by
column, tensors by index, missing fields missing, the prediction from label or value."""

from __future__ import annotations

import numpy as np
import orjson

from modelport.monitoring.drift import window_of
from modelport.monitoring.features import feature_columns


def logged(inputs: dict[str, list[object]], outputs: dict[str, list[object]]) -> tuple[str, str]:
    return orjson.dumps(inputs).decode(), orjson.dumps(outputs).decode()


def test_table_columns_concatenate_and_a_missing_field_is_missing() -> None:
    window = window_of(
        [
            logged({"age": [31, 40], "city": ["paris", "nice"]}, {"label": [0, 1]}),
            logged({"age": [52]}, {"label": [1]}),  # city dropped by the log's masking
            (None, None),  # a request that failed before its input was read
        ]
    )
    assert window.requests == 2
    assert window.rows == 3
    assert window.columns["age"].tolist() == [31.0, 40.0, 52.0]
    assert window.columns["city"].tolist() == ["paris", "nice", None]
    assert window.predictions is not None
    assert window.predictions.dtype.kind == "i"  # labels stay labels: 0, not 0.0
    assert window.predictions.tolist() == [0, 1, 1]


def test_a_column_first_seen_later_is_missing_before() -> None:
    window = window_of([logged({"a": [1.0]}, {}), logged({"a": [2.0], "b": [5.0]}, {})])
    assert window.columns["b"].tolist() == [None, 5.0]
    assert window.predictions is None


def test_tensors_become_indexed_features() -> None:
    window = window_of([logged({"input": [[5.1, 3.5], [4.9, None]]}, {"prediction": [0.5, 0.25]})])
    assert set(window.columns) == {"input[0]", "input[1]"}
    assert window.columns["input[0]"].tolist() == [5.1, 4.9]
    assert window.columns["input[1]"].tolist() == [3.5, None]
    assert window.predictions is not None
    assert window.predictions.tolist() == [0.5, 0.25]


def test_feature_columns_leave_higher_dimensional_tensors_out() -> None:
    columns = feature_columns({"image": np.zeros((2, 3, 3)), "x": np.arange(2)})
    assert list(columns) == ["x"]
