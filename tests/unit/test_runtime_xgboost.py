"""XGBoost runtime: UBJSON / JSON models registered, reloaded and compared with the originals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

import modelport
from modelport.config import Settings
from modelport.errors import ArtifactIntegrityError, ModelLoadError
from modelport.registry import Registry, prepare_file
from modelport.runtimes.base import flavor_for
from tests.parity import assert_same_classifier, round_trip

SMALL = {"n_estimators": 20, "max_depth": 3, "n_jobs": 1, "random_state": 0}


@pytest.fixture(scope="module")
def binary(tabular_data: tuple[np.ndarray, np.ndarray]) -> xgb.XGBClassifier:
    X, y = tabular_data
    return xgb.XGBClassifier(**SMALL).fit(X, y)


@pytest.fixture(scope="module")
def multiclass(iris_data: tuple[np.ndarray, np.ndarray]) -> xgb.XGBClassifier:
    X, y = iris_data
    return xgb.XGBClassifier(**SMALL).fit(X, y)


@pytest.fixture(scope="module")
def frame_data(tabular_data: tuple[np.ndarray, np.ndarray]) -> pd.DataFrame:
    X, _ = tabular_data
    return pd.DataFrame(X[:, :5], columns=["amount", "age", "tenure", "score", "visits"])


@pytest.fixture(scope="module")
def regressor(frame_data: pd.DataFrame) -> xgb.XGBRegressor:
    return xgb.XGBRegressor(**SMALL).fit(frame_data, frame_data["amount"] * 3 + 1)


def test_binary_classifier(
    settings: Settings, binary: xgb.XGBClassifier, tabular_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = tabular_data
    record = modelport.log_model(binary, "churn", X[:5], settings=settings)
    outputs = modelport.load_model("churn", settings=settings).predict_outputs(X)
    assert (record.framework, record.flavor_options["objective"]) == ("xgboost", "binary")
    assert_same_classifier(outputs, binary, X)


def test_multiclass_classifier(
    settings: Settings, multiclass: xgb.XGBClassifier, iris_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = iris_data
    outputs = round_trip(multiclass, "iris-xgb", X[:5], X, settings)
    assert_same_classifier(outputs, multiclass, X)


def test_regressor_on_reordered_columns(
    settings: Settings, regressor: xgb.XGBRegressor, frame_data: pd.DataFrame
) -> None:
    reordered = frame_data[list(reversed(frame_data.columns))]  # fed by name, not position
    outputs = round_trip(regressor, "amount", reordered.head(), reordered, settings)
    assert list(outputs) == ["prediction"]
    np.testing.assert_allclose(outputs["prediction"], regressor.predict(frame_data), rtol=1e-6)


def test_early_stopped_model_predicts_with_its_best_trees(
    settings: Settings, tabular_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = tabular_data
    model = xgb.XGBClassifier(**{**SMALL, "n_estimators": 200}, early_stopping_rounds=3)
    model.fit(X[:300], y[:300], eval_set=[(X[300:], y[300:])], verbose=False)
    assert model.best_iteration < 199
    modelport.log_model(model, "early", X[:5], settings=settings)
    outputs = modelport.load_model("early", settings=settings).predict_outputs(X)
    np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(X), rtol=1e-6)


def test_native_booster(settings: Settings, tabular_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = tabular_data
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
        xgb.DMatrix(X, y),
        num_boost_round=10,
    )
    modelport.log_model(booster, "booster", X[:5], settings=settings)
    outputs = modelport.load_model("booster", settings=settings).predict_outputs(X)
    probability = booster.inplace_predict(X)
    np.testing.assert_array_equal(outputs["label"], (probability > 0.5).astype(int))
    np.testing.assert_allclose(outputs["probabilities"][:, 1], probability, rtol=1e-6)


@pytest.mark.parametrize("suffix", [".ubj", ".json"])
def test_model_file_import(
    settings: Settings,
    registry: Registry,
    tmp_path: Path,
    suffix: str,
    multiclass: xgb.XGBClassifier,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    path = tmp_path / f"iris{suffix}"
    multiclass.save_model(path)
    with prepare_file(path, X[:5]) as prepared:
        record = registry.register("iris-file", prepared)
    assert (record.flavor, record.trusted) == ("xgboost", False)
    outputs = modelport.load_model("iris-file", settings=settings).predict_outputs(X)
    np.testing.assert_array_equal(outputs["label"], multiclass.predict(X))
    np.testing.assert_allclose(outputs["probabilities"], multiclass.predict_proba(X), rtol=1e-6)


def test_a_json_file_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"hello": "world"}')
    with (
        pytest.raises(ModelLoadError, match="not an XGBoost model"),
        prepare_file(path, np.zeros((1, 2))),
    ):
        pass


def test_tampered_model_file_is_refused(
    settings: Settings,
    registry: Registry,
    binary: xgb.XGBClassifier,
    tabular_data: tuple[np.ndarray, np.ndarray],
) -> None:
    record = modelport.log_model(binary, "tamper", tabular_data[0][:5], settings=settings)
    stored = registry.artifact_dir(record) / "model.ubj"
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError):
        modelport.load_model("tamper", settings=settings)


def test_xgboost_models_are_claimed_by_the_xgboost_flavor(binary: xgb.XGBClassifier) -> None:
    assert flavor_for(binary).name == "xgboost"
    assert flavor_for(binary.get_booster()).name == "xgboost"


def test_missing_values_are_accepted_by_default_and_answered_like_the_model(
    settings: Settings, tabular_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = tabular_data
    holes = X.copy()
    holes[::5, 2] = np.nan
    model = xgb.XGBClassifier(**SMALL).fit(holes, y)
    record = modelport.log_model(model, "holes", X[:5], settings=settings)  # sample: no NaN
    assert record.signature.inputs[0].nullable
    outputs = modelport.load_model("holes", settings=settings).predict_outputs(holes)
    assert_same_classifier(outputs, model, holes)
