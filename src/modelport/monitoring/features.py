"""Feature columns as drift sees them, the same on the reference and on live traffic.

A model's checked input is a mapping of names to arrays: one 1-D array per column for a
table, or one 2-D tensor for a model that takes a matrix. Drift is per feature, so a tensor
of ``k`` columns becomes ``k`` features named ``<input>[0]`` … ``<input>[k-1]``; columns stay
as they are. Tensors of more dimensions are not features and are left out.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

PREDICTION_OUTPUTS = ("label", "prediction")
"""The output drift watches as "the prediction": a classifier's label, else the value."""


def feature_columns(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    features: dict[str, np.ndarray] = {}
    for name, values in inputs.items():
        if values.ndim == 1:
            features[name] = values
        elif values.ndim == 2:
            for index in range(values.shape[1]):
                features[f"{name}[{index}]"] = values[:, index]
    return features
