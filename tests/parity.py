"""Round trip through the registry, and the checks every runtime test makes of the result."""

from __future__ import annotations

from typing import Any

import numpy as np

import modelport
from modelport.config import Settings
from modelport.runtimes.batch import Outputs


def round_trip(model: object, name: str, sample: Any, rows: Any, settings: Settings) -> Outputs:
    """Register ``model``, load it back hash-verified, and predict ``rows`` with it."""
    modelport.log_model(model, name, sample, settings=settings)
    return modelport.load_model(name, settings=settings).predict_outputs(rows)


def assert_same_classifier(outputs: Outputs, model: Any, rows: Any, **tolerance: float) -> None:
    """Labels identical, probabilities within ``tolerance`` (default rtol 1e-6) of the live
    estimator's."""
    np.testing.assert_array_equal(outputs["label"], model.predict(rows))
    np.testing.assert_allclose(
        outputs["probabilities"], model.predict_proba(rows), **(tolerance or {"rtol": 1e-6})
    )
