"""What the gradient-boosting runtimes (LightGBM, XGBoost) share: objectives, features, outputs."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import numpy as np

from modelport.errors import ModelLoadError
from modelport.runtimes.base import classifier_outputs
from modelport.runtimes.batch import Batch, Outputs
from modelport.runtimes.signature import STRING, Signature, SignatureKind


class Objective(StrEnum):
    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"


def tree_outputs(objective: Objective, classes: np.ndarray, scores: np.ndarray) -> Outputs:
    """Booster scores as ``prediction``, or as ``label`` + ``probabilities`` for classifiers."""
    if objective is Objective.REGRESSION:
        return {"prediction": scores}
    if objective is Objective.BINARY:
        scores = np.column_stack([1.0 - scores, scores])  # P(class 1) -> one column per class
    return classifier_outputs(classes, scores)


def column_order(
    framework: str,
    signature: Signature,
    features: list[str] | None,
    n_features: int,
    *,
    categorical: Sequence[str] = (),
) -> list[str] | None:
    """Columns in the booster's feature order when the names match, else in signature order.

    Only ``categorical`` features (the runtime maps their values to codes) may hold strings.
    """
    if signature.kind is SignatureKind.TENSOR:
        return None
    strings = [
        spec.name
        for spec in signature.inputs
        if spec.dtype == STRING and spec.name not in categorical
    ]
    if strings:
        raise ModelLoadError(
            f"the {framework} runtime takes numeric columns; "
            f"{', '.join(strings)} hold strings: encode them before fitting, "
            "make them pandas categoricals (LightGBM), or use the sklearn "
            "flavor"
        )
    names = signature.input_names()
    if len(names) != n_features:
        raise ModelLoadError(
            f"the model has {n_features} features, the sample has {len(names)} columns"
        )
    return features if features and sorted(features) == sorted(names) else names


def feature_matrix(batch: Batch, columns: list[str] | None) -> np.ndarray:
    """The float matrix a booster predicts on: the tensor itself, or columns stacked in order."""
    if columns is None:
        return next(iter(batch.columns.values()))
    return np.column_stack([batch.columns[name] for name in columns]).astype(np.float64)
