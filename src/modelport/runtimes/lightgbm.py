"""LightGBM runtime: the booster's own text format (never pickle), one thread per process.

Both the native ``Booster`` and the scikit-learn wrappers are saved as their booster; the
wrapper's ``classes_`` are recorded so a classifier answers with the labels it was fitted on.

A model fitted on a DataFrame with ``category`` columns keeps their categories in its file
(``pandas_categorical``) and maps values to category codes by position in those lists: such a
column is served as its values (strings, or numbers), and the runtime rebuilds the categorical
with the training categories; a value the model never saw is missing to it, as in LightGBM's
own ``predict``. NaN is "missing" to every LightGBM tree, so numeric inputs accept it.
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
from modelport.runtimes.signature import Signature, SignatureKind
from modelport.runtimes.trees import Objective, column_order, feature_matrix, tree_outputs

if find_spec("lightgbm") is None:  # flavors() leaves this flavor out when it is missing
    raise ImportError("lightgbm is not installed")

MODEL_FILE = "model.txt"
_HEADER_LINES = 64


class LightGBMRuntime:
    """Calls ``Booster.predict`` on a float matrix, or on a DataFrame when some features are
    categorical; classifiers answer label + probabilities."""

    def __init__(
        self,
        booster: Any,
        signature: Signature,
        objective: Objective,
        classes: np.ndarray,
        categorical: list[str],
    ) -> None:
        self._booster = booster
        features = list(booster.feature_name())
        categories = booster.pandas_categorical or []
        if len(categories) != len(categorical):
            raise ModelLoadError(
                f"the model lists {len(categorical)} categorical features "
                f"but categories for {len(categories)}"
            )
        self._categories = dict(zip(categorical, categories, strict=True))
        if self._categories and signature.kind is SignatureKind.TENSOR:
            raise ModelLoadError(
                f"features {', '.join(categorical)} are categorical: register "
                "the model with a DataFrame sample, so they are named columns"
            )
        self._columns = column_order(
            "lightgbm", signature, features, len(features), categorical=categorical
        )
        self._objective = objective
        self._classes = classes

    def predict(self, batch: Batch) -> Outputs:
        data = self._frame(batch) if self._categories else feature_matrix(batch, self._columns)
        scores = np.asarray(self._booster.predict(data, num_threads=1))
        return tree_outputs(self._objective, self._classes, scores)

    def _frame(self, batch: Batch) -> Any:
        """Features in the booster's order; categorical ones with the training categories,
        so that a value's code is the one it had in training whatever the request holds."""
        import pandas as pd

        assert self._columns is not None
        columns: dict[str, Any] = {}
        for name in self._columns:
            values = batch.columns[name]
            if name in self._categories:
                categories = pd.Index(self._categories[name])
                codes = categories.get_indexer(pd.Index(values, dtype=object))  # -1: unseen
                columns[name] = pd.Categorical.from_codes(codes, categories=categories)
            else:
                columns[name] = values.astype(np.float64, copy=False)
        return pd.DataFrame(columns)


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
    """Objective kind, categorical features, class labels (a bare booster's are indices)."""
    header = _read_header(path)
    categorical = _categorical_features(header)
    kind = header.get("objective", "").split(" ")[0]
    if kind == "binary":
        objective = Objective.BINARY
    elif kind in ("multiclass", "multiclassova"):
        objective = Objective.MULTICLASS
    else:
        return {"objective": Objective.REGRESSION.value, "categorical": categorical}
    if classes is None:
        classes = np.arange(2 if objective is Objective.BINARY else int(header["num_class"]))
    return {
        "objective": objective.value,
        "classes": np.asarray(classes).tolist(),
        "categorical": categorical,
    }


def _categorical_features(header: dict[str, str]) -> list[str]:
    """Names of the categorical features: their ``feature_infos`` entry lists category codes
    (``-1:0:2``) where a numeric feature's is a range (``[0.5:9]``) or ``none``."""
    names = header.get("feature_names", "").split()
    infos = header.get("feature_infos", "").split()
    return [
        name
        for name, info in zip(names, infos, strict=False)
        if not info.startswith("[") and info != "none"
    ]


class LightGBMFlavor:
    name = "lightgbm"
    suffixes = (".txt", ".lgb")
    file_format: str | None = "text"

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
        categorical = list(request.options.get("categorical", []))
        return LightGBMRuntime(booster, request.signature, objective, classes, categorical)


def _saved(options: dict[str, Any]) -> SavedModel:
    return SavedModel(
        "lightgbm", options, library_versions("lightgbm", "numpy"), handles_missing=True
    )
