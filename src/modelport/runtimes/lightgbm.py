"""LightGBM runtime: the booster's own text format (never pickle), one thread per process.

Both the native ``Booster`` and the scikit-learn wrappers are saved as their booster; the
wrapper's ``classes_`` are recorded so a classifier answers with the labels it was fitted on.
"""

from __future__ import annotations

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

if find_spec("lightgbm") is None:  # flavors() leaves this flavor out when it is missing
    raise ImportError("lightgbm is not installed")

MODEL_FILE = "model.txt"
_HEADER_LINES = 64



class LightGBMRuntime:
    """Calls ``Booster.predict`` on a float matrix; classifiers answer label + probabilities."""

    def __init__(self, booster: Any, signature: Signature, objective: Objective,
                 classes: np.ndarray) -> None:
        self._booster = booster
        features = list(booster.feature_name())
        self._columns = column_order("lightgbm", signature, features, len(features))
        self._objective = objective
        self._classes = classes

    def predict(self, batch: Batch) -> Outputs:
        features = feature_matrix(batch, self._columns)
        scores = np.asarray(self._booster.predict(features, num_threads=1))
        return tree_outputs(self._objective, self._classes, scores)



def _read_header(path: Path) -> dict[str, str]:
    """``key=value`` lines at the top of a LightGBM text model (objective, num_class ...)."""
    header: dict[str, str] = {}
    with path.open(encoding="utf-8", errors="replace") as handle:
        for _, line in zip(range(_HEADER_LINES), handle, strict=False):
            key, sep, value = line.strip().partition("=")
            if sep:
                header[key] = value
    if "objective" not in header and "num_class" not in header:
        raise ModelLoadError(f"{path.name} is not a LightGBM text model")
    return header


def _options(path: Path, classes: Any) -> dict[str, Any]:
    """Objective kind and class labels; a bare booster's labels are its class indices."""
    header = _read_header(path)
    kind = header.get("objective", "").split(" ")[0]
    if kind == "binary":
        objective = Objective.BINARY
    elif kind in ("multiclass", "multiclassova"):
        objective = Objective.MULTICLASS
    else:
        return {"objective": Objective.REGRESSION.value}
    if classes is None:
        classes = np.arange(2 if objective is Objective.BINARY else int(header["num_class"]))
    return {"objective": objective.value, "classes": np.asarray(classes).tolist()}


class LightGBMFlavor:
    name = "lightgbm"
    suffixes = (".txt", ".lgb")

    def accepts(self, model: object) -> bool:
        lgb = sys.modules.get("lightgbm")  # a LightGBM model cannot exist unless it is imported
        return lgb is not None and isinstance(model, lgb.Booster | lgb.LGBMModel)

    def save(self, model: object, directory: Path, signature: Signature) -> SavedModel:
        import lightgbm as lgb

        booster: Any = model.booster_ if isinstance(model, lgb.LGBMModel) else model
        path = directory / MODEL_FILE
        booster.save_model(path)
        return _saved(_options(path, getattr(model, "classes_", None)))

    def import_file(self, source: Path, directory: Path, trusted: bool) -> SavedModel:
        """Adopt a text model (``.txt``, or MLflow's ``.lgb``); it holds no code to trust."""
        options = _options(source, None)
        shutil.copyfile(source, directory / MODEL_FILE)
        return _saved(options)

    def load(self, request: LoadRequest) -> LightGBMRuntime:
        import lightgbm as lgb

        booster = lgb.Booster(model_file=request.directory / MODEL_FILE)
        objective = Objective(request.options["objective"])
        classes = np.asarray(request.options.get("classes", []))
        return LightGBMRuntime(booster, request.signature, objective, classes)


def _saved(options: dict[str, Any]) -> SavedModel:
    return SavedModel("lightgbm", options, library_versions("lightgbm", "numpy"))
