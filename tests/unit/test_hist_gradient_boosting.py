"""HistGradientBoosting small batches: the flat trees answer exactly as the estimator does."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from modelport.runtimes.batch import Batch
from modelport.runtimes.hist_gradient_boosting import (
    MAX_ROWS,
    SmallBatchPredictor,
    small_batch_predictor,
)
from modelport.runtimes.signature import Signature, SignatureKind, TensorSpec
from modelport.runtimes.sklearn import SklearnRuntime

N_FEATURES = 6
TENSOR = Signature(SignatureKind.TENSOR, (TensorSpec("input", "float64", (-1, N_FEATURES)),))
EXACT = {"rtol": 1e-12, "atol": 1e-15}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """The estimator's OpenMP threads spin-wait on a busy machine: one keeps this file fast."""
    with threadpool_limits(1):
        yield


def _data(n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Features with a missing value in one cell of ten, so trees learn where NaN goes, and a
    last feature that is 1 or missing (mostly for class 0): its one split is "missing or not"."""
    X, y = make_classification(
        n_samples=600,
        n_features=N_FEATURES,
        n_informative=4,
        n_classes=n_classes,
        random_state=0,
    )
    draws = np.random.default_rng(0).random(X.shape)
    X[:, -1] = 1.0
    X[draws < 0.1] = np.nan
    X[(y == 0) & (draws[:, -1] < 0.8), -1] = np.nan
    return X, y


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    """Ordinary rows, then missing, infinite and mixed ones: every branch rule in play."""
    X, _ = _data(2)
    special = np.tile(X[:4], (6, 1))
    special[0:4, :] = np.nan
    special[4:8, :] = np.inf
    special[8:12, :] = -np.inf
    special[12:16, ::2] = np.nan
    special[16:20, 1::2] = np.inf
    special[20:24, ::3] = -np.inf
    return np.vstack([X[:16], special])


@cache
def _binary() -> HistGradientBoostingClassifier:
    X, y = _data(2)
    return HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X, y)


@cache
def _multiclass() -> HistGradientBoostingClassifier:
    X, y = _data(3)
    return HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y + 7)


@cache
def _early_stopped() -> HistGradientBoostingClassifier:
    X, y = _data(3)
    return HistGradientBoostingClassifier(
        max_iter=200, early_stopping=True, n_iter_no_change=2, random_state=0
    ).fit(X, y)


@cache
def _regressor(loss: str) -> HistGradientBoostingRegressor:
    X, y = _data(2)
    target = np.nan_to_num(X[:, 0]) ** 2 + y + 0.5  # positive, for the Poisson log link
    return HistGradientBoostingRegressor(loss=loss, max_iter=30, random_state=0).fit(X, target)


# Fitted once per test process (they are only read, but for a copy that is altered).
CLASSIFIERS = {"binary": _binary, "multiclass": _multiclass, "early stopped": _early_stopped}


def _fast(model: Any, signature: Signature = TENSOR) -> SmallBatchPredictor:
    predictor = small_batch_predictor(model, signature)
    assert predictor is not None
    return predictor


def _batches(rows: np.ndarray) -> list[np.ndarray]:
    """The rows in batches of every size up to the limit."""
    sizes = [1, 2, 3, 4, 7, MAX_ROWS]
    return [rows[i : i + size] for size in sizes for i in range(0, len(rows), size)]


@pytest.mark.parametrize("kind", CLASSIFIERS)
def test_classifiers_answer_as_predict_proba(kind: str, rows: np.ndarray) -> None:
    model = CLASSIFIERS[kind]()
    predictor = _fast(model)
    for batch in _batches(rows):
        outputs = predictor.predict(Batch.of({"input": batch}))
        assert outputs is not None
        np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(batch), **EXACT)
        np.testing.assert_array_equal(outputs["label"], model.predict(batch))


@pytest.mark.parametrize("loss", ["squared_error", "absolute_error", "poisson"])
def test_regressors_answer_as_predict(loss: str, rows: np.ndarray) -> None:
    model = _regressor(loss)
    predictor = _fast(model)
    for batch in _batches(rows):
        outputs = predictor.predict(Batch.of({"input": batch}))
        assert outputs is not None
        np.testing.assert_allclose(outputs["prediction"], model.predict(batch), **EXACT)


def test_the_models_exercise_missing_value_splits_and_early_stopping() -> None:
    """Without splits that send NaN right, or a model stopped early, the tests above would
    pass for the wrong reason."""
    nodes = np.concatenate([tree.nodes for trees in _binary()._predictors for tree in trees])
    splits = nodes[nodes["is_leaf"] == 0]
    assert (splits["missing_go_to_left"] == 0).any()
    assert (splits["missing_go_to_left"] == 1).any()
    assert np.isinf(splits["num_threshold"]).any()  # "split on NaN": every number goes left
    assert _early_stopped().n_iter_ < 200


def test_integer_and_float32_tensors_are_converted_as_the_estimator_does() -> None:
    model = _binary()
    predictor = _fast(model)
    for batch in (np.arange(12).reshape(2, N_FEATURES), np.ones((3, N_FEATURES), np.float32)):
        outputs = predictor.predict(Batch.of({"input": batch}))
        assert outputs is not None
        np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(batch), **EXACT)


def test_big_empty_or_misshapen_batches_are_left_to_the_estimator(rows: np.ndarray) -> None:
    predictor = _fast(_binary())
    big = np.tile(rows, (MAX_ROWS, 1))[: MAX_ROWS + 1]
    for batch in (big, rows[:0], rows[:2, :4], rows[:2].astype(str)):
        assert predictor.predict(Batch.of({"input": batch})) is None


def test_columns_in_the_fitted_order_are_served_and_other_names_are_not() -> None:
    X, y = _data(2)
    names = [f"f{i}" for i in range(N_FEATURES)]
    model = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(
        pd.DataFrame(X, columns=names), y
    )
    columns = Signature(
        SignatureKind.COLUMNS, tuple(TensorSpec(name, "float64", (-1,)) for name in names)
    )
    frame = pd.DataFrame(X[:5], columns=names)
    outputs = _fast(model, columns).predict(
        Batch.of({name: frame[name].to_numpy() for name in names})
    )
    assert outputs is not None
    np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(frame), **EXACT)
    shuffled = Signature(SignatureKind.COLUMNS, columns.inputs[::-1])
    assert small_batch_predictor(model, shuffled) is None


def test_categorical_features_and_other_estimators_keep_the_estimator() -> None:
    X, y = _data(2)
    X[:, 0] = np.random.default_rng(1).integers(0, 4, len(X))
    categorical = HistGradientBoostingClassifier(
        max_iter=5, categorical_features=[0], random_state=0
    ).fit(X, y)
    assert small_batch_predictor(categorical, TENSOR) is None
    assert small_batch_predictor(HistGradientBoostingClassifier(), TENSOR) is None  # unfitted
    from sklearn.linear_model import LogisticRegression

    assert small_batch_predictor(LogisticRegression(), TENSOR) is None


def test_a_tree_layout_it_does_not_know_keeps_the_estimator() -> None:
    model = copy.deepcopy(_binary())
    tree = model._predictors[0][0]
    tree.nodes = tree.nodes[["value", "left", "right"]]
    assert small_batch_predictor(model, TENSOR) is None


def test_the_runtime_answers_small_and_big_batches_alike(rows: np.ndarray) -> None:
    model = _multiclass()
    runtime = SklearnRuntime(model, TENSOR)
    big = np.tile(rows, (2, 1))
    for batch in (rows[:3], big):
        outputs = runtime.predict(Batch.of({"input": batch}))
        np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(batch), **EXACT)
        np.testing.assert_array_equal(outputs["label"], model.predict(batch))


def test_a_model_read_back_from_skops_takes_the_fast_path(tmp_path: Path) -> None:
    """The registry stores sklearn models with skops: the trees must read back as they were."""
    import skops.io as sio

    path = tmp_path / "model.skops"
    sio.dump(_multiclass(), path)
    model = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    rows = _data(3)[0][:4]
    outputs = _fast(model).predict(Batch.of({"input": rows}))
    assert outputs is not None
    np.testing.assert_array_equal(outputs["probabilities"], _multiclass().predict_proba(rows))
