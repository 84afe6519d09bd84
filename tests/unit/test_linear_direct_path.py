"""LogisticRegression's direct path gives the estimator's probabilities to the bit, and leaves
to the estimator whatever it would refuse or see differently."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from modelport.runtimes.batch import Batch
from modelport.runtimes.direct import direct_path
from modelport.runtimes.linear_models import LogisticRegressionPath, logistic_regression_path
from modelport.runtimes.signature import Signature, SignatureKind, TensorSpec
from modelport.runtimes.sklearn import SklearnRuntime

N_FEATURES = 5
TENSOR = Signature(SignatureKind.TENSOR, (TensorSpec("input", "float64", (-1, N_FEATURES)),))


class Subclass(LogisticRegression):
    pass


def fitted(n_classes: int, labels: Any = None) -> tuple[LogisticRegression, np.ndarray]:
    X, y = make_classification(
        n_samples=300, n_features=N_FEATURES, n_informative=3, n_classes=n_classes, random_state=1
    )
    target = y if labels is None else np.asarray(labels)[y]
    return LogisticRegression(max_iter=500).fit(X, target), X


def path(model: Any, signature: Signature = TENSOR) -> LogisticRegressionPath:
    found = logistic_regression_path(model, signature)
    assert found is not None
    return found


@pytest.mark.parametrize(("n_classes", "labels"), [(2, None), (2, ["no", "yes"]), (3, None)])
@pytest.mark.parametrize("rows", [1, 2, 7, 300])
def test_probabilities_and_labels_equal_the_estimators(
    n_classes: int, labels: Any, rows: int
) -> None:
    model, X = fitted(n_classes, labels)
    batch = Batch.of({"input": X[:rows]})
    outputs = path(model).predict(batch)
    assert outputs is not None
    np.testing.assert_array_equal(outputs["probabilities"], model.predict_proba(X[:rows]))
    np.testing.assert_array_equal(outputs["label"], model.predict(X[:rows]))


@pytest.mark.parametrize("n_classes", [3, 7, 8, 11])
def test_softmax_by_column_or_by_row_equals_the_estimators_to_the_bit(n_classes: int) -> None:
    """Both sides of SEQUENTIAL_SUM_BELOW, on wide-ranging scores where a different order of
    additions would change the last bits."""
    X, y = make_classification(
        n_samples=2000, n_features=12, n_informative=10, n_classes=n_classes, random_state=3
    )
    X = X * np.random.default_rng(0).uniform(0.1, 40, X.shape[1])
    model = LogisticRegression(max_iter=2000).fit(X, y)
    signature = Signature(SignatureKind.TENSOR, (TensorSpec("input", "float64", (-1, 12)),))
    outputs = path(model, signature).predict(Batch.of({"input": X}))
    assert outputs is not None
    np.testing.assert_array_equal(outputs["probabilities"], model.predict_proba(X))


def test_integer_and_float32_inputs_are_converted_as_the_estimator_does() -> None:
    model, X = fitted(3)
    for rows in (np.rint(X[:9]).astype(np.int64), X[:9].astype(np.float32)):
        outputs = path(model).predict(Batch.of({"input": rows}))
        assert outputs is not None
        np.testing.assert_array_equal(outputs["probabilities"], model.predict_proba(rows))


def test_what_the_estimator_would_refuse_goes_to_the_estimator() -> None:
    model, X = fitted(2)
    runtime = SklearnRuntime(model, TENSOR)
    for bad in (np.nan, np.inf):
        rows = X[:3].copy()
        rows[1, 2] = bad
        assert path(model).predict(Batch.of({"input": rows})) is None
        with pytest.raises(ValueError, match=r"infinity|NaN"):
            runtime.predict(Batch.of({"input": rows}))
    assert path(model).predict(Batch.of({"input": X[:0]})) is None
    assert path(model).predict(Batch.of({"input": X[:3, :4]})) is None  # too narrow


def test_only_a_fitted_plain_logistic_regression_takes_the_path() -> None:
    model, X = fitted(2)
    assert logistic_regression_path(LogisticRegression(), TENSOR) is None  # unfitted
    subclass = Subclass(max_iter=500).fit(X, model.predict(X))
    assert logistic_regression_path(subclass, TENSOR) is None  # may predict its own way
    sparse = LogisticRegression(max_iter=500).fit(X, model.predict(X)).sparsify()
    assert logistic_regression_path(sparse, TENSOR) is None
    assert direct_path(model, TENSOR) is not None


def test_columns_pass_only_under_their_fitted_names_in_order() -> None:
    X, y = make_classification(n_samples=200, n_features=3, n_informative=2, n_redundant=0)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = LogisticRegression().fit(frame, y)

    def columns(*names: str) -> Signature:
        return Signature(
            SignatureKind.COLUMNS, tuple(TensorSpec(n, "float64", (-1,)) for n in names)
        )

    assert logistic_regression_path(model, columns("b", "a", "c")) is None
    batch = Batch.of({name: frame[name].to_numpy()[:4] for name in "abc"})
    outputs = path(model, columns("a", "b", "c")).predict(batch)
    assert outputs is not None
    np.testing.assert_array_equal(outputs["probabilities"], model.predict_proba(frame[:4]))
