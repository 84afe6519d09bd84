"""LightGBM runtime: text-format models registered, reloaded and compared with the originals."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

import modelport
from modelport.config import Settings
from modelport.errors import ArtifactIntegrityError, ModelLoadError
from modelport.registry import Registry, stage_file
from modelport.runtimes.base import flavor_for
from tests.parity import assert_same_classifier, round_trip

SMALL = {"n_estimators": 20, "num_leaves": 8, "verbose": -1, "random_state": 0}


@pytest.fixture(scope="module")
def binary(tabular_data: tuple[np.ndarray, np.ndarray]) -> lgb.LGBMClassifier:
    X, y = tabular_data
    return lgb.LGBMClassifier(**SMALL).fit(X, np.array(["no", "yes"])[y])


@pytest.fixture(scope="module")
def multiclass(iris_data: tuple[np.ndarray, np.ndarray]) -> lgb.LGBMClassifier:
    X, y = iris_data
    return lgb.LGBMClassifier(**SMALL, min_child_samples=5).fit(X, y + 10)


@pytest.fixture(scope="module")
def frame_data(tabular_data: tuple[np.ndarray, np.ndarray]) -> pd.DataFrame:
    X, _ = tabular_data
    return pd.DataFrame(X[:, :5], columns=["amount", "age", "tenure", "score", "visits"])


@pytest.fixture(scope="module")
def regressor(frame_data: pd.DataFrame) -> lgb.LGBMRegressor:
    return lgb.LGBMRegressor(**SMALL).fit(frame_data, frame_data["amount"] * 3 + 1)


def test_binary_classifier_keeps_its_string_labels(
        settings: Settings, binary: lgb.LGBMClassifier,
        tabular_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = tabular_data
    record = modelport.log_model(binary, "churn", X[:5], settings=settings)
    outputs = modelport.load_model("churn", settings=settings).predict_outputs(X)
    assert (record.framework, record.flavor_options["classes"]) == ("lightgbm", ["no", "yes"])
    assert_same_classifier(outputs, binary, X)


def test_multiclass_classifier(settings: Settings, multiclass: lgb.LGBMClassifier,
                               iris_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = iris_data
    outputs = round_trip(multiclass, "iris-lgb", X[:5], X, settings)
    assert_same_classifier(outputs, multiclass, X)


def test_regressor_on_reordered_columns(settings: Settings, regressor: lgb.LGBMRegressor,
                                        frame_data: pd.DataFrame) -> None:
    reordered = frame_data[list(reversed(frame_data.columns))]  # fed by name, not position
    outputs = round_trip(regressor, "amount", reordered.head(), reordered, settings)
    assert list(outputs) == ["prediction"]
    np.testing.assert_allclose(outputs["prediction"], regressor.predict(frame_data), rtol=1e-6)


def test_native_booster_answers_class_indices(
        settings: Settings, tabular_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = tabular_data
    booster = lgb.train({"objective": "binary", "num_leaves": 8, "verbose": -1},
                        lgb.Dataset(X, y), num_boost_round=10)
    modelport.log_model(booster, "booster", X[:5], settings=settings)
    outputs = modelport.load_model("booster", settings=settings).predict_outputs(X)
    probability = booster.predict(X)
    np.testing.assert_array_equal(outputs["label"], (probability > 0.5).astype(int))
    np.testing.assert_allclose(outputs["probabilities"][:, 1], probability, rtol=1e-6)


@pytest.mark.parametrize("suffix", [".txt", ".lgb"])
def test_text_file_import(settings: Settings, registry: Registry, tmp_path: Path, suffix: str,
                          multiclass: lgb.LGBMClassifier,
                          iris_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = iris_data
    path = tmp_path / f"iris{suffix}"
    multiclass.booster_.save_model(path)
    with stage_file(path, X[:5]) as staged:
        record = registry.register("iris-file", staged)
    assert (record.flavor, record.trusted) == ("lightgbm", False)
    outputs = modelport.load_model("iris-file", settings=settings).predict_outputs(X)
    np.testing.assert_array_equal(outputs["label"], multiclass.predict(X) - 10)  # no classes_
    np.testing.assert_allclose(outputs["probabilities"], multiclass.predict_proba(X), rtol=1e-6)


def test_a_text_file_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(ModelLoadError, match="not a LightGBM text model"), \
            stage_file(path, np.zeros((1, 2))):
        pass


def test_tampered_model_file_is_refused(settings: Settings, registry: Registry,
                                        regressor: lgb.LGBMRegressor,
                                        frame_data: pd.DataFrame) -> None:
    record = modelport.log_model(regressor, "tamper", frame_data.head(), settings=settings)
    stored = registry.artifact_dir(record) / "model.txt"
    text = stored.read_text()
    stored.write_text(text.replace("Tree=0", "Tree=9", 1))
    with pytest.raises(ArtifactIntegrityError):
        modelport.load_model("tamper", settings=settings)


def test_string_columns_are_refused(settings: Settings, regressor: lgb.LGBMRegressor,
                                    frame_data: pd.DataFrame) -> None:
    sample = frame_data.head().assign(visits=["a", "b", "c", "d", "e"])
    with pytest.raises(ModelLoadError, match="numeric columns"):
        modelport.log_model(regressor, "strings", sample, settings=settings)


def test_lightgbm_models_are_claimed_by_the_lightgbm_flavor(
        binary: lgb.LGBMClassifier) -> None:
    assert flavor_for(binary).name == "lightgbm"
    assert flavor_for(binary.booster_).name == "lightgbm"
