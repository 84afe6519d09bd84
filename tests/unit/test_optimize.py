"""optimize: real models compiled to ONNX, compared with their source, registered or refused.

A refusal must leave the registry exactly as it was: no version, no artifact files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import modelport
from modelport.config import Settings
from modelport.errors import ConversionError
from modelport.registry import Registry
from modelport.registry.optimize import optimize_version

Data = tuple[np.ndarray, np.ndarray]


class Doubler(modelport.PythonModel):
    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        return inputs["input"].sum(axis=1) * 2  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def forest(tabular_data: Data) -> RandomForestClassifier:
    X, y = tabular_data
    # odd: with an even number of trees a 50/50 vote is a float32 coin flip (see the tie test)
    return RandomForestClassifier(n_estimators=21, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def forest_regressor(tabular_data: Data) -> RandomForestRegressor:
    X, _ = tabular_data
    return RandomForestRegressor(n_estimators=10, max_depth=6, random_state=0).fit(X, X[:, 0])


@pytest.fixture(scope="module")
def scaled_logreg(tabular_data: Data) -> Pipeline:
    X, y = tabular_data
    return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(max_iter=500))]).fit(
        X, y
    )


@pytest.fixture(scope="module")
def scaled_lightgbm(tabular_data: Data) -> Pipeline:
    X, y = tabular_data
    return Pipeline(
        [("scale", StandardScaler()), ("model", lgb.LGBMClassifier(n_estimators=20, verbose=-1))]
    ).fit(X, y)


@pytest.fixture(scope="module")
def lightgbm_classifier(iris_data: Data) -> lgb.LGBMClassifier:
    X, y = iris_data
    return lgb.LGBMClassifier(n_estimators=30, verbose=-1).fit(X, y)


@pytest.fixture(scope="module")
def xgboost_classifier(iris_data: Data) -> xgb.XGBClassifier:
    X, y = iris_data
    return xgb.XGBClassifier(n_estimators=30).fit(X, y)


def untouched(registry: Registry, name: str) -> tuple[list[int], list[str]]:
    """What a refusal must not change: the model's versions and every artifact key."""
    return (
        [v.version for v in registry.list_versions(name)],
        sorted(dict(registry.artifacts.keys())),
    )


@pytest.mark.parametrize(
    ("model_fixture", "data_fixture", "converters"),
    [
        ("iris_logreg", "iris_data", "skl2onnx"),
        ("forest", "tabular_data", "skl2onnx"),
        ("forest_regressor", "tabular_data", "skl2onnx"),
        ("scaled_logreg", "tabular_data", "skl2onnx"),
        ("mixed_pipeline", "mixed_frame", "skl2onnx"),
        ("scaled_lightgbm", "tabular_data", "skl2onnx + onnxmltools"),
        ("lightgbm_classifier", "iris_data", "onnxmltools"),
        ("xgboost_classifier", "iris_data", "onnxmltools"),
    ],
)
def test_optimized_version_answers_like_its_source(
    request: pytest.FixtureRequest,
    settings: Settings,
    registry: Registry,
    model_fixture: str,
    data_fixture: str,
    converters: str,
) -> None:
    model = request.getfixturevalue(model_fixture)
    data = request.getfixturevalue(data_fixture)[0]
    source = modelport.log_model(
        model,
        "m",
        data[:5],
        metrics={"auc": 0.9},
        params={"C": 1},
        tags={"team": "risk"},
        settings=settings,
    )
    result = optimize_version(registry, "m")
    record = registry.get_version("m", 2)
    assert (record.flavor, record.tags) == ("onnx", {"optimized_from": "1"})
    assert record.signature.inputs == source.signature.inputs
    assert [s.name for s in record.signature.outputs] == [s.name for s in source.signature.outputs]
    assert (record.metrics, record.params) == (source.metrics, source.params)
    assert record.lineage["source"] == "optimize"
    assert record.lineage["source_version"] == "m/1"
    assert re.sub(r" \d\S*", "", record.lineage["converter"]) == converters  # versions dropped
    assert result.parity.rows == 512
    assert result.parity.max_abs_diff <= 1e-5
    original = modelport.load_model("m/1", settings=settings).predict(data)
    compiled = modelport.load_model("m/2", settings=settings).predict(data)
    if "label" in result.parity.identical:
        np.testing.assert_array_equal(compiled, original)
    else:
        np.testing.assert_allclose(compiled, original, rtol=1e-5, atol=1e-5)


def test_summary_and_report_say_what_was_checked(
    settings: Settings, registry: Registry, iris_logreg: LogisticRegression, iris_data: Data
) -> None:
    X, _ = iris_data
    modelport.log_model(iris_logreg, "iris", X[:5], settings=settings)
    result = optimize_version(registry, "iris@latest", rows=64)
    assert re.fullmatch(
        r"optimized iris/1 -> iris/2 \(onnx\): labels identical on 64 rows, "
        r"max \|Δp\| \S+; in-process predict 1 row: \d+ µs -> \d+ µs",
        result.summary(),
    )
    report = result.report()
    assert report["source"] == "iris/1"
    assert report["parity"]["identical"] == ["label"]
    assert set(report["latency_us"]) == {"source", "onnx"}
    assert all(value > 0 for value in report["latency_us"].values())


def test_nullable_columns_stay_nullable_and_nulls_are_compared(
    settings: Settings, registry: Registry, tabular_data: Data
) -> None:
    X, y = tabular_data
    frame = pd.DataFrame(X[:, :4], columns=["a", "b", "c", "d"])
    frame.loc[::7, "c"] = np.nan
    model = Pipeline(
        [("impute", SimpleImputer()), ("model", LogisticRegression(max_iter=500))]
    ).fit(frame, y)
    source = modelport.log_model(model, "imputed", frame.head(10), settings=settings)
    assert [s.nullable for s in source.signature.inputs] == [False, False, True, False]
    optimize_version(registry, "imputed")
    assert registry.get_version("imputed", 2).signature.inputs == source.signature.inputs


def test_unconvertible_model_is_refused_with_the_reason(
    settings: Settings, registry: Registry, iris_hgb: object, iris_data: Data
) -> None:
    X, _ = iris_data
    modelport.log_model(iris_hgb, "hgb", X[:5], settings=settings)
    before = untouched(registry, "hgb")
    with pytest.raises(
        ConversionError,
        match=r"skl2onnx \S+ cannot convert "
        r"HistGradientBoostingClassifier \(.+\); serve hgb/1 as is",
    ) as refused:
        optimize_version(registry, "hgb")
    assert (refused.value.status, refused.value.code) == (422, "conversion_failed")
    assert refused.value.__cause__ is not None
    assert untouched(registry, "hgb") == before


@pytest.mark.parametrize("flavor", ["onnx", "pyfunc"])
def test_versions_without_a_converter_are_refused(
    settings: Settings,
    registry: Registry,
    iris_logreg: LogisticRegression,
    iris_data: Data,
    flavor: str,
) -> None:
    X, _ = iris_data
    model = to_onnx(iris_logreg, X[:1].astype(np.float32)) if flavor == "onnx" else Doubler()
    modelport.log_model(model, "other", X[:5], settings=settings)
    before = untouched(registry, "other")
    expected = "already an ONNX version" if flavor == "onnx" else "pyfunc version"
    with pytest.raises(ConversionError, match=expected):
        optimize_version(registry, "other")
    assert untouched(registry, "other") == before


def test_parity_beyond_atol_is_refused_with_the_worst_difference(
    settings: Settings, registry: Registry, iris_logreg: LogisticRegression, iris_data: Data
) -> None:
    X, _ = iris_data
    modelport.log_model(iris_logreg, "iris", X[:5], settings=settings)
    before = untouched(registry, "iris")
    # float32 graph against float64 scikit-learn: a real, small difference
    with pytest.raises(ConversionError, match=r"max \|difference\| \S+ exceeds atol 1e-12"):
        optimize_version(registry, "iris", atol=1e-12)
    assert untouched(registry, "iris") == before


def test_missing_values_answered_differently_are_refused(
    settings: Settings, registry: Registry, tabular_data: Data
) -> None:
    """skl2onnx converts a forest fitted with NaN, but its graph routes NaN differently."""
    X, y = tabular_data
    X = X[:, :6].copy()
    X[::7, 2] = np.nan
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    modelport.log_model(model, "nan-forest", X[:10], settings=settings)
    before = untouched(registry, "nan-forest")
    with pytest.raises(ConversionError, match=r"label differs on \d+ of 512 rows"):
        optimize_version(registry, "nan-forest")
    assert untouched(registry, "nan-forest") == before


def test_tied_votes_are_refused_showing_the_tie(
    settings: Settings, registry: Registry, tabular_data: Data
) -> None:
    """sklearn takes the first of tied classes; float32 sums make onnxruntime pick another."""
    X, y = tabular_data
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    modelport.log_model(model, "even-forest", X[:5], settings=settings)
    with pytest.raises(
        ConversionError,
        match=r"source 0 with probabilities \[0\.5, 0\.5\], "
        r"onnx 1 with \[0\.49999994, 0\.50000006\]",
    ):
        optimize_version(registry, "even-forest")
