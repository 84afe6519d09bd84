"""XGBoost runtime: UBJSON / JSON model files (never pickle), ``inplace_predict`` on one thread.

Both the native ``Booster`` and the scikit-learn wrappers are saved as their booster; the
wrapper's ``classes_`` are recorded so a classifier answers with the labels it was fitted on.
"""

from __future__ import annotations

import json
import shutil
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from modelport.errors import ModelLoadError
from modelport.runtimes.base import LoadRequest, SavedModel, library_versions
from modelport.runtimes.batch import Batch, Outputs
from modelport.runtimes.signature import Signature
from modelport.runtimes.trees import Objective, column_order, feature_matrix, tree_outputs

if find_spec("xgboost") is None:  # flavors() leaves this flavor out when it is missing
    raise ImportError("xgboost is not installed")

MODEL_FILE = "model.ubj"
_OBJECTIVES = {"binary:logistic": "binary", "multi:softprob": "multiclass"}


class XGBoostRuntime:
    """Calls ``inplace_predict`` (no DMatrix); classifiers answer label + probabilities."""

    def __init__(
        self, booster: Any, signature: Signature, objective: Objective, classes: np.ndarray
    ) -> None:
        self._booster = booster
        self._columns = column_order(
            "xgboost", signature, booster.feature_names, booster.num_features()
        )
        self._objective = objective
        self._classes = classes
        # the scikit-learn wrapper predicts with the trees up to the early-stopping best one
        best = booster.attr("best_iteration")
        self._iterations = (0, int(best) + 1) if best is not None else (0, 0)

    def predict(self, batch: Batch) -> Outputs:
        scores = self._booster.inplace_predict(
            feature_matrix(batch, self._columns), iteration_range=self._iterations
        )
        return tree_outputs(self._objective, self._classes, scores)


def _options(booster: Any, classes: Any) -> dict[str, Any]:
    """Objective kind and class labels; a bare booster's labels are its class indices."""
    learner = json.loads(booster.save_config())["learner"]
    objective = Objective(_OBJECTIVES.get(learner["objective"]["name"], "regression"))
    if objective is Objective.REGRESSION:
        return {"objective": objective.value}
    if classes is None:
        n_classes = int(learner["learner_model_param"]["num_class"])
        classes = np.arange(2 if objective is Objective.BINARY else n_classes)
    return {"objective": objective.value, "classes": np.asarray(classes).tolist()}


def _booster(path: Path) -> Any:
    import xgboost as xgb

    try:
        return xgb.Booster(params={"nthread": 1}, model_file=path)
    except xgb.core.XGBoostError as exc:
        raise ModelLoadError(f"{path.name} is not an XGBoost model: {exc}") from exc


class XGBoostFlavor:
    name = "xgboost"
    suffixes = (".ubj", ".json")
    file_format: str | None = "ubj"

    def accepts(self, model: object) -> bool:
        xgb = sys.modules.get("xgboost")  # an XGBoost model cannot exist unless it is imported
        return xgb is not None and isinstance(model, xgb.Booster | xgb.XGBModel)

    def save(self, model: object, directory: Path, signature: Signature) -> SavedModel:
        import xgboost as xgb

        booster: Any = model.get_booster() if isinstance(model, xgb.XGBModel) else model
        booster.save_model(directory / MODEL_FILE)
        options = _options(booster, getattr(model, "classes_", None))
        return _saved({**options, "file": MODEL_FILE})

    def import_file(self, source: Path, directory: Path, trusted: bool) -> SavedModel:
        """Adopt a ``.ubj`` or ``.json`` model; XGBoost reads the format from the suffix."""
        target = directory / f"model{source.suffix}"
        shutil.copyfile(source, target)
        return _saved({**_options(_booster(target), None), "file": target.name})

    def load(self, request: LoadRequest) -> XGBoostRuntime:
        booster = _booster(request.directory / request.options["file"])
        objective = Objective(request.options["objective"])
        classes = np.asarray(request.options.get("classes", []))
        return XGBoostRuntime(booster, request.signature, objective, classes)


def _saved(options: dict[str, Any]) -> SavedModel:
    # XGBoost routes NaN down each split's learned default branch
    return SavedModel(
        "xgboost", options, library_versions("xgboost", "numpy"), handles_missing=True
    )
