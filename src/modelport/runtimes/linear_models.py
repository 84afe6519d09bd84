"""LogisticRegression without its per-call checks: the same scores from the same arrays.

scikit-learn's ``predict_proba`` is ``X @ coef_.T + intercept_`` followed by the logistic
function (two classes) or softmax (more); on one row its input validation is ~80 µs of 92.
Here the same operations run on the conformed batch, so the probabilities are the same to the
bit. A batch with NaN or infinity goes to the estimator, which refuses it as before.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.runtimes.base import classifier_outputs
from modelport.runtimes.batch import Batch, Outputs
from modelport.runtimes.direct import Features
from modelport.runtimes.signature import Signature


class LogisticRegressionPath:
    def __init__(self, model: Any, features: Features) -> None:
        from scipy.special import expit
        from sklearn.utils.extmath import softmax

        self._coef_t = model.coef_.T
        self._intercept = model.intercept_
        self._classes = np.asarray(model.classes_)
        self._binary = self._classes.size <= 2
        self._expit = expit
        self._softmax = softmax
        self._features = features

    def predict(self, batch: Batch) -> Outputs | None:
        features = self._features.matrix(batch)
        if features is None or features.shape[0] == 0 or not np.isfinite(features).all():
            return None
        scores = features @ self._coef_t + self._intercept
        if self._binary:  # scikit-learn's _predict_proba_lr, on the one column of scores
            positive = self._expit(scores.reshape(-1), out=scores.reshape(-1))
            probabilities = np.stack([1 - positive, positive], axis=1)
        elif scores.shape[1] < SEQUENTIAL_SUM_BELOW:
            probabilities = _softmax_by_column(scores)
        else:
            probabilities = self._softmax(scores, copy=False)
        return classifier_outputs(self._classes, probabilities)


SEQUENTIAL_SUM_BELOW = 8
"""numpy sums a row of fewer than 8 values left to right (pairwise, in unrolled blocks, from
8 on), so below that column-by-column adds give its sums to the bit."""


def _softmax_by_column(scores: np.ndarray) -> np.ndarray:
    """scikit-learn's softmax, in place, with the row max and sum taken column by column: a
    numpy reduction along a row of 3 values cost 40 µs for 1,024 rows, the columns 4 µs, and
    softmax was three quarters of a small model's batch call (bench/batch_scoring.py)."""
    columns = scores.shape[1]
    peak = scores[:, 0].copy()
    for j in range(1, columns):
        np.maximum(peak, scores[:, j], out=peak)
    scores -= peak[:, None]
    np.exp(scores, out=scores)
    total = scores[:, 0].copy()
    for j in range(1, columns):
        total += scores[:, j]
    scores /= total[:, None]
    return scores


def logistic_regression_path(model: object, signature: Signature) -> LogisticRegressionPath | None:
    """The direct path of a fitted, dense LogisticRegression (not a subclass), or None."""
    if type(model).__module__ != "sklearn.linear_model._logistic":
        return None  # and scikit-learn stays unimported for every other model
    from sklearn.linear_model import LogisticRegression

    if type(model) is not LogisticRegression:
        return None
    coef = getattr(model, "coef_", None)
    intercept = getattr(model, "intercept_", None)
    classes = getattr(model, "classes_", None)
    if not isinstance(coef, np.ndarray) or not isinstance(intercept, np.ndarray):
        return None  # unfitted, or sparsified coefficients
    if classes is None or coef.dtype != np.float64 or coef.ndim != 2:
        return None
    features = Features.of(model, signature)
    if features is None or coef.shape[1] != features.n_features:
        return None
    return LogisticRegressionPath(model, features)
