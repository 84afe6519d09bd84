"""LightGBM runtime: text-format models registered, reloaded and compared with the originals."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

import modelport
from modelport.config import Settings
from modelport.errors import ArtifactIntegrityError, InvalidInputError, ModelLoadError
from modelport.registry import Registry, prepare_file
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


@pytest.fixture(scope="module")
def shop() -> pd.DataFrame:
    """Numeric columns with gaps, a string category and a numeric category, as pandas holds
    them in a real project."""
    rng = np.random.default_rng(11)
    rows = 400
    frame = pd.DataFrame(
        {
            "amount": rng.normal(50, 20, rows),
            "city": pd.Categorical(rng.choice(["lyon", "nice", "paris"], rows)),
            "tier": pd.Categorical(rng.choice([1, 2, 3], rows)),
            "visits": rng.integers(0, 30, rows).astype(np.float64),
        }
    )
    frame.loc[rng.random(rows) < 0.15, "amount"] = np.nan
    frame.loc[rng.random(rows) < 0.15, "visits"] = np.nan
    return frame


def _bought(frame: pd.DataFrame) -> np.ndarray:
    return ((frame["amount"].fillna(80) > 50) ^ (frame["city"] == "nice")).to_numpy(int)


@pytest.fixture(scope="module")
def shop_classifier(shop: pd.DataFrame) -> lgb.LGBMClassifier:
    return lgb.LGBMClassifier(**SMALL, min_child_samples=5).fit(shop, _bought(shop))


def test_categorical_columns_round_trip(
    settings: Settings, shop_classifier: lgb.LGBMClassifier, shop: pd.DataFrame
) -> None:
    complete = shop.dropna().head(20)  # nothing missing in the sample: the model decides
    record = modelport.log_model(shop_classifier, "shop", complete, settings=settings)
    specs = {s.name: (s.dtype, s.nullable) for s in record.signature.inputs}
    assert specs["city"][0] == "string"
    assert specs["amount"] == specs["visits"] == ("float64", True)
    assert record.flavor_options["categorical"] == ["city", "tier"]
    loaded = modelport.load_model("shop", settings=settings)
    assert_same_classifier(loaded.predict_outputs(shop), shop_classifier, shop)
    # what a JSON client sends: plain strings, null for a gap, a city the model never saw
    request = {
        "amount": [42.0, None, 70.0],
        "city": ["paris", "nice", "tokyo"],
        "tier": [3, 1, 2],
        "visits": [None, 4.0, 9.0],
    }
    as_pandas = pd.DataFrame(
        {
            "amount": [42.0, np.nan, 70.0],
            "city": pd.Categorical(["paris", "nice", None], categories=["lyon", "nice", "paris"]),
            "tier": pd.Categorical([3, 1, 2], categories=[1, 2, 3]),
            "visits": [np.nan, 4.0, 9.0],
        }
    )
    assert_same_classifier(loaded.predict_outputs(request), shop_classifier, as_pandas)


def test_categorical_booster_and_text_file(
    settings: Settings, registry: Registry, tmp_path: Path, shop: pd.DataFrame
) -> None:
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 8, "verbose": -1, "min_data_in_leaf": 5},
        lgb.Dataset(shop, _bought(shop)),
        num_boost_round=10,
    )
    modelport.log_model(booster, "shop-booster", shop.head(20), settings=settings)
    outputs = modelport.load_model("shop-booster", settings=settings).predict_outputs(shop)
    np.testing.assert_allclose(outputs["probabilities"][:, 1], booster.predict(shop), rtol=1e-6)

    path = tmp_path / "shop.txt"
    booster.save_model(path)
    sample = {
        "amount": [12.5, None],
        "city": ["nice", "lyon"],
        "tier": [1, 3],
        "visits": [3.0, 8.0],
    }  # a JSON sample: no pandas dtype says "category"
    with prepare_file(path, sample, name="shop-file") as prepared:
        registry.register("shop-file", prepared)
    outputs = modelport.load_model("shop-file", settings=settings).predict_outputs(shop)
    np.testing.assert_allclose(outputs["probabilities"][:, 1], booster.predict(shop), rtol=1e-6)


def test_missing_values_are_accepted_by_default_and_answered_like_the_model(
    settings: Settings, tabular_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = tabular_data
    holes = X.copy()
    holes[::7, 3] = np.nan
    model = lgb.LGBMRegressor(**SMALL).fit(holes, y)
    outputs = round_trip(model, "holes", X[:5], holes, settings)  # the sample has no NaN
    np.testing.assert_allclose(outputs["prediction"], model.predict(holes), rtol=1e-6)
    strict = modelport.log_model(model, "strict", X[:5], allow_missing=False, settings=settings)
    assert not strict.signature.inputs[0].nullable
    with pytest.raises(InvalidInputError, match="NaN"):
        modelport.load_model("strict", settings=settings).predict(holes)


def test_binary_classifier_keeps_its_string_labels(
    settings: Settings, binary: lgb.LGBMClassifier, tabular_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = tabular_data
    record = modelport.log_model(binary, "churn", X[:5], settings=settings)
    outputs = modelport.load_model("churn", settings=settings).predict_outputs(X)
    assert (record.framework, record.flavor_options["classes"]) == ("lightgbm", ["no", "yes"])
    assert_same_classifier(outputs, binary, X)


def test_multiclass_classifier(
    settings: Settings, multiclass: lgb.LGBMClassifier, iris_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = iris_data
    outputs = round_trip(multiclass, "iris-lgb", X[:5], X, settings)
    assert_same_classifier(outputs, multiclass, X)


def test_regressor_on_reordered_columns(
    settings: Settings, regressor: lgb.LGBMRegressor, frame_data: pd.DataFrame
) -> None:
    reordered = frame_data[list(reversed(frame_data.columns))]  # fed by name, not position
    outputs = round_trip(regressor, "amount", reordered.head(), reordered, settings)
    assert list(outputs) == ["prediction"]
    np.testing.assert_allclose(outputs["prediction"], regressor.predict(frame_data), rtol=1e-6)


def test_native_booster_answers_class_indices(
    settings: Settings, tabular_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = tabular_data
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 8, "verbose": -1},
        lgb.Dataset(X, y),
        num_boost_round=10,
    )
    modelport.log_model(booster, "booster", X[:5], settings=settings)
    outputs = modelport.load_model("booster", settings=settings).predict_outputs(X)
    probability = booster.predict(X)
    np.testing.assert_array_equal(outputs["label"], (probability > 0.5).astype(int))
    np.testing.assert_allclose(outputs["probabilities"][:, 1], probability, rtol=1e-6)


@pytest.mark.parametrize("suffix", [".txt", ".lgb"])
def test_text_file_import(
    settings: Settings,
    registry: Registry,
    tmp_path: Path,
    suffix: str,
    multiclass: lgb.LGBMClassifier,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    path = tmp_path / f"iris{suffix}"
    multiclass.booster_.save_model(path)
    with prepare_file(path, X[:5]) as prepared:
        record = registry.register("iris-file", prepared)
    assert (record.flavor, record.trusted) == ("lightgbm", False)
    outputs = modelport.load_model("iris-file", settings=settings).predict_outputs(X)
    np.testing.assert_array_equal(outputs["label"], multiclass.predict(X) - 10)  # no classes_
    np.testing.assert_allclose(outputs["probabilities"], multiclass.predict_proba(X), rtol=1e-6)


def test_a_text_file_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with (
        pytest.raises(ModelLoadError, match="not a LightGBM text model"),
        prepare_file(path, np.zeros((1, 2))),
    ):
        pass


def test_tampered_model_file_is_refused(
    settings: Settings, registry: Registry, regressor: lgb.LGBMRegressor, frame_data: pd.DataFrame
) -> None:
    record = modelport.log_model(regressor, "tamper", frame_data.head(), settings=settings)
    stored = registry.artifact_dir(record) / "model.txt"
    text = stored.read_text()
    stored.write_text(text.replace("Tree=0", "Tree=9", 1))
    with pytest.raises(ArtifactIntegrityError):
        modelport.load_model("tamper", settings=settings)


def test_string_columns_are_refused(
    settings: Settings, regressor: lgb.LGBMRegressor, frame_data: pd.DataFrame
) -> None:
    sample = frame_data.head().assign(visits=["a", "b", "c", "d", "e"])
    with pytest.raises(ModelLoadError, match="numeric columns"):
        modelport.log_model(regressor, "strings", sample, settings=settings)


def test_lightgbm_models_are_claimed_by_the_lightgbm_flavor(binary: lgb.LGBMClassifier) -> None:
    assert flavor_for(binary).name == "lightgbm"
    assert flavor_for(binary.booster_).name == "lightgbm"
