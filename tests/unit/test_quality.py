"""Quality metrics equal scikit-learn's on the same arrays; what cannot be computed is None."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from sklearn import metrics

from modelport.monitoring.feedback import Labelled
from modelport.monitoring.quality import classification, quality_of, regression


def test_binary_uses_the_larger_label_as_positive() -> None:
    rng = np.random.default_rng(3)
    truth = rng.choice(["churn", "stay"], 200)
    p_stay = np.clip(np.where(truth == "stay", 0.7, 0.3) + rng.normal(0, 0.2, 200), 0.01, 0.99)
    probabilities = np.column_stack([1 - p_stay, p_stay])
    predicted = np.where(p_stay > 0.5, "stay", "churn")
    got = classification(truth, predicted, probabilities).metrics
    assert got["precision"] == pytest.approx(
        metrics.precision_score(truth, predicted, pos_label="stay")
    )
    assert got["recall"] == pytest.approx(metrics.recall_score(truth, predicted, pos_label="stay"))
    assert got["f1"] == pytest.approx(metrics.f1_score(truth, predicted, pos_label="stay"))
    assert got["roc_auc"] == pytest.approx(metrics.roc_auc_score(truth == "stay", p_stay))
    assert got["log_loss"] == pytest.approx(metrics.log_loss(truth, probabilities))


def test_what_cannot_be_computed_is_none() -> None:
    one_class = classification(np.array([1, 1, 1]), np.array([1, 1, 0]), np.full((3, 2), 0.5))
    assert one_class.metrics["roc_auc"] is None
    assert one_class.metrics["log_loss"] is not None
    unknown_columns = classification(np.array([0, 1]), np.array([0, 1]), np.full((2, 3), 1 / 3))
    assert unknown_columns.metrics["log_loss"] is None  # three columns, two classes seen
    assert regression(np.array([1.0]), np.array([1.5])).metrics["r2"] is None


def test_rows_of_multi_row_requests_are_picked_by_index() -> None:
    outputs = orjson.dumps({"prediction": [10.0, 20.0, 30.0]}).decode()
    quality = quality_of([Labelled(2, 33.0, outputs), Labelled(0, 9.0, outputs)])
    assert quality is not None
    assert quality.rows == 2
    assert quality.metrics["mae"] == pytest.approx(2.0)
    assert quality_of([]) is None
    assert quality_of([Labelled(5, 1.0, outputs)]) is None  # no such row


def test_quality_limits_name_known_metrics_only() -> None:
    from pydantic import ValidationError

    from modelport.config import Settings

    assert Settings(quality_limits={"rmse": 3.0}).quality_limits == {"rmse": 3.0}
    with pytest.raises(ValidationError, match="acuracy"):
        Settings(quality_limits={"acuracy": 0.9})


def test_breaches_have_a_floor_or_a_ceiling_by_metric() -> None:
    from modelport.monitoring.quality import Breach, Quality, breaches_of

    figures = Quality("regression", 50, {"mae": 2.0, "rmse": 4.0, "r2": 0.5})
    limits = {"mae": 2.0, "rmse": 3.5, "r2": 0.6}
    assert breaches_of(figures, limits) == [  # mae at its ceiling passes
        Breach("rmse", 4.0, 3.5, "ceiling"),
        Breach("r2", 0.5, 0.6, "floor"),
    ]
    assert breaches_of(figures, {"accuracy": 0.9}) == []  # not a classifier's figures
