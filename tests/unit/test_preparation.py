"""Staging: the model name is checked first; missing values follow the model."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings
from modelport.errors import InvalidInputError
from modelport.registry import prepare_file, prepare_object
from tests.parity import assert_same_classifier


class _Touch:
    """A pickle whose loading creates a file: proof of whether staging unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_a_bad_name_stops_preparation_before_a_trusted_pickle_is_loaded(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    path = tmp_path / "model.joblib"
    path.write_bytes(pickle.dumps(_Touch(marker)))
    with (
        pytest.raises(InvalidInputError, match="invalid model name") as caught,
        prepare_file(path, np.zeros((1, 2)), name="../escape", trusted=True),
    ):
        pass
    assert caught.value.pointer == "/model_name"
    assert not marker.exists()


def test_a_bad_name_stops_preparation_before_an_object_is_looked_at() -> None:
    # object() has no flavor: without the name check first this would be a ConfigurationError
    with (
        pytest.raises(InvalidInputError, match="invalid model name"),
        prepare_object(object(), np.zeros((1, 2)), name="bad name!"),
    ):
        pass


def test_missing_values_follow_the_model_unless_told(
    iris_hgb: HistGradientBoostingClassifier,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data  # no NaN anywhere in the sample
    with prepare_object(iris_hgb, X[:5]) as trees:
        assert all(spec.nullable for spec in trees.signature.inputs)
    with prepare_object(iris_logreg, X[:5]) as linear:  # would raise on NaN: keeps the sample's
        assert not any(spec.nullable for spec in linear.signature.inputs)
    with prepare_object(iris_hgb, X[:5], allow_missing=False) as told:
        assert not any(spec.nullable for spec in told.signature.inputs)


def test_a_histgradientboosting_model_answers_nan_like_itself(
    settings: Settings,
    iris_hgb: HistGradientBoostingClassifier,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    holes = X.copy()
    holes[::4, 1] = np.nan
    modelport.log_model(iris_hgb, "iris-hgb", X[:5], settings=settings)
    outputs = modelport.load_model("iris-hgb", settings=settings).predict_outputs(holes)
    assert_same_classifier(outputs, iris_hgb, holes)
