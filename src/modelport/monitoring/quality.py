"""Model quality from logged answers and their ground truth: pure functions over arrays, and
the step from joined log rows to those arrays.

Classifiers (outputs ``label``, ``probabilities``): accuracy; precision, recall and F1 of the
positive class when there are two classes (the larger label, as scikit-learn orders them),
macro averages otherwise; ROC AUC (one-vs-rest, macro, for more than two classes) and log loss
from the probabilities. Regressors (output ``prediction``): MAE, RMSE and R². A metric that
cannot be computed on the rows at hand (AUC with one class present, R² of one row) is None.

The probabilities' columns are the model's classes in sorted order (scikit-learn's
``classes_``). The classes are the labels seen in the answers and truths; when they are fewer
than the columns (a class never predicted nor observed), the probability metrics are None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from sklearn import metrics

from modelport.monitoring.feedback import Labelled


@dataclass(frozen=True, slots=True)
class Quality:
    kind: str
    """``classification`` or ``regression``."""
    rows: int
    metrics: dict[str, float | None]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "rows": self.rows, "metrics": self.metrics}


def classification(
    truth: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray | None = None
) -> Quality:
    classes = np.unique(np.concatenate([truth, predicted]))
    binary = classes.size == 2
    average = "binary" if binary else "macro"
    positive = classes[-1] if binary else 1
    scores: dict[str, float | None] = {
        "accuracy": float(metrics.accuracy_score(truth, predicted)),
        "precision": float(
            metrics.precision_score(
                truth, predicted, average=average, pos_label=positive, zero_division=0
            )
        ),
        "recall": float(
            metrics.recall_score(
                truth, predicted, average=average, pos_label=positive, zero_division=0
            )
        ),
        "f1": float(
            metrics.f1_score(truth, predicted, average=average, pos_label=positive, zero_division=0)
        ),
        "roc_auc": None,
        "log_loss": None,
    }
    if probabilities is not None and probabilities.shape[1] == classes.size:
        scores["log_loss"] = float(metrics.log_loss(truth, probabilities, labels=classes))
        if np.unique(truth).size > 1:
            scores["roc_auc"] = _roc_auc(truth, probabilities, classes)
    return Quality("classification", int(truth.size), scores)


def _roc_auc(truth: np.ndarray, probabilities: np.ndarray, classes: np.ndarray) -> float | None:
    if classes.size == 2:
        return float(metrics.roc_auc_score(truth == classes[1], probabilities[:, 1]))
    if np.unique(truth).size < classes.size:  # one-vs-rest needs every class among the truths
        return None
    return float(
        metrics.roc_auc_score(
            truth, probabilities, multi_class="ovr", average="macro", labels=classes
        )
    )


def regression(truth: np.ndarray, predicted: np.ndarray) -> Quality:
    truth, predicted = truth.astype(np.float64), predicted.astype(np.float64)
    return Quality(
        "regression",
        int(truth.size),
        {
            "mae": float(metrics.mean_absolute_error(truth, predicted)),
            "rmse": float(np.sqrt(metrics.mean_squared_error(truth, predicted))),
            "r2": float(metrics.r2_score(truth, predicted)) if truth.size > 1 else None,
        },
    )


def quality_of(labelled: Sequence[Labelled]) -> Quality | None:
    """Quality over joined rows; None when there are none (or no usable output)."""
    truths: list[Any] = []
    labels: list[Any] = []
    probabilities: list[list[float]] = []
    values: list[Any] = []
    for item in labelled:
        outputs = orjson.loads(item.outputs)
        if "label" in outputs and item.row < len(outputs["label"]):
            labels.append(outputs["label"][item.row])
            if "probabilities" in outputs:
                probabilities.append(outputs["probabilities"][item.row])
        elif "prediction" in outputs and item.row < len(outputs["prediction"]):
            values.append(outputs["prediction"][item.row])
        else:
            continue
        truths.append(item.truth)
    if labels and not values:
        complete = len(probabilities) == len(labels)
        return classification(
            np.array(truths), np.array(labels), np.array(probabilities) if complete else None
        )
    if values and not labels:
        return regression(np.array(truths), np.array(values))
    return None
