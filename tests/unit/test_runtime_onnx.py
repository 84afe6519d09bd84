"""ONNX runtime: skl2onnx graphs registered, reloaded and compared with the sklearn originals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import modelport
from modelport.config import Settings
from modelport.errors import ArtifactIntegrityError, ModelLoadError
from modelport.registry import Registry, prepare_file
from modelport.runtimes.base import flavor_for
from tests.parity import assert_same_classifier, round_trip

PROBABILITY_TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}  # float32 graph vs float64 sklearn


def graph(model: Any, sample: np.ndarray, **options: Any) -> onnx.ModelProto:
    return to_onnx(model, sample[:1].astype(np.float32), options=options or None)


@pytest.fixture(scope="module")
def binary_logreg(tabular_data: tuple[np.ndarray, np.ndarray]) -> LogisticRegression:
    X, y = tabular_data
    return LogisticRegression(max_iter=500).fit(X, y)


@pytest.fixture(scope="module")
def forest(tabular_data: tuple[np.ndarray, np.ndarray]) -> RandomForestRegressor:
    X, _ = tabular_data
    return RandomForestRegressor(n_estimators=10, max_depth=5, random_state=0).fit(X, X[:, 0])


def test_multiclass_zipmap_graph_matches_sklearn(
    settings: Settings, iris_logreg: LogisticRegression, iris_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = iris_data
    record = modelport.log_model(graph(iris_logreg, X), "iris-onnx", X[:5], settings=settings)
    outputs = modelport.load_model("iris-onnx", settings=settings).predict_outputs(X)
    assert record.framework == "onnx"
    assert set(outputs) == {"label", "probabilities"}
    np.testing.assert_array_equal(outputs["label"], iris_logreg.predict(X))
    np.testing.assert_allclose(
        outputs["probabilities"], iris_logreg.predict_proba(X), **PROBABILITY_TOLERANCE
    )


def test_binary_tensor_probabilities_match_sklearn(
    settings: Settings,
    binary_logreg: LogisticRegression,
    tabular_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = tabular_data
    model = graph(binary_logreg, X, zipmap=False)
    outputs = round_trip(model, "binary-onnx", X[:5], X, settings)
    assert_same_classifier(outputs, binary_logreg, X, **PROBABILITY_TOLERANCE)


def test_string_labels_come_back_in_class_order(
    settings: Settings, iris_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = iris_data
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    model = LogisticRegression(max_iter=500).fit(X, names)
    outputs = round_trip(graph(model, X), "iris-names", X[:5], X, settings)
    assert_same_classifier(outputs, model, X, **PROBABILITY_TOLERANCE)


def test_regressor_single_output_becomes_flat_prediction(
    settings: Settings, forest: RandomForestRegressor, tabular_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = tabular_data
    outputs = round_trip(graph(forest, X), "forest-onnx", X[:5], X, settings)
    assert list(outputs) == ["prediction"]
    assert outputs["prediction"].shape == (len(X),)
    np.testing.assert_allclose(outputs["prediction"], forest.predict(X), rtol=1e-5)


def test_named_columns_feed_graph_inputs_by_name(
    settings: Settings, mixed_pipeline: Pipeline, mixed_frame: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, _ = mixed_frame
    model = to_onnx(
        mixed_pipeline,
        initial_types=[
            ("age", FloatTensorType([None, 1])),
            ("income", FloatTensorType([None, 1])),
            ("city", StringTensorType([None, 1])),
            ("member", StringTensorType([None, 1])),
        ],
        options={"zipmap": False},
    )
    reordered = frame[["member", "income", "city", "age"]]  # names, not positions, must matter
    modelport.log_model(model, "mixed-onnx", reordered.head(), settings=settings)
    outputs = modelport.load_model("mixed-onnx", settings=settings).predict_outputs(reordered)
    np.testing.assert_array_equal(outputs["label"], mixed_pipeline.predict(frame))
    np.testing.assert_allclose(
        outputs["probabilities"], mixed_pipeline.predict_proba(frame), **PROBABILITY_TOLERANCE
    )


def test_columns_fill_a_single_matrix_input_in_order(
    settings: Settings, iris_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = iris_data
    frame = pd.DataFrame(X, columns=["sepal_length", "sepal_width", "petal_length", "petal_width"])
    model = LogisticRegression(max_iter=500).fit(frame, y)
    modelport.log_model(graph(model, X), "iris-frame", frame.head(), settings=settings)
    outputs = modelport.load_model("iris-frame", settings=settings).predict_outputs(frame)
    np.testing.assert_array_equal(outputs["label"], model.predict(frame))
    np.testing.assert_allclose(
        outputs["probabilities"], model.predict_proba(frame), **PROBABILITY_TOLERANCE
    )


def test_onnx_file_import(
    settings: Settings,
    registry: Registry,
    tmp_path: Path,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    path = tmp_path / "iris.onnx"
    onnx.save_model(graph(iris_logreg, X), path)
    with prepare_file(path, X[:5]) as prepared:
        record = registry.register("iris-file", prepared)
    assert (record.flavor, record.trusted) == ("onnx", False)
    outputs = modelport.load_model("iris-file", settings=settings).predict_outputs(X)
    np.testing.assert_array_equal(outputs["label"], iris_logreg.predict(X))


def test_tampered_graph_is_refused(
    settings: Settings,
    registry: Registry,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    record = modelport.log_model(graph(iris_logreg, X), "tamper", X[:5], settings=settings)
    stored = registry.artifact_dir(record) / "model.onnx"
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0xFF
    stored.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError):
        modelport.load_model("tamper", settings=settings)


def test_tensor_sample_for_a_multi_input_graph_is_refused(
    settings: Settings, mixed_pipeline: Pipeline
) -> None:
    model = to_onnx(
        mixed_pipeline,
        initial_types=[
            ("age", FloatTensorType([None, 1])),
            ("income", FloatTensorType([None, 1])),
            ("city", StringTensorType([None, 1])),
            ("member", StringTensorType([None, 1])),
        ],
    )
    with pytest.raises(ModelLoadError, match="4 inputs"):
        modelport.log_model(model, "wrong-sample", np.zeros((2, 4)), settings=settings)


def test_onnx_graphs_are_claimed_by_the_onnx_flavor(
    iris_logreg: LogisticRegression, iris_data: tuple[np.ndarray, np.ndarray]
) -> None:
    assert flavor_for(graph(iris_logreg, iris_data[0])).name == "onnx"
    assert flavor_for(iris_logreg).name == "sklearn"
