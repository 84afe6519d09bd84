"""scikit-learn runtime: skops files by default, pickle/joblib only for trusted versions."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from modelport.errors import UntrustedArtifactError
from modelport.runtimes.archives import check_zip_sizes
from modelport.runtimes.base import LoadRequest, SavedModel, classifier_outputs, library_versions
from modelport.runtimes.batch import Batch, Outputs
from modelport.runtimes.direct import direct_path
from modelport.runtimes.signature import Signature, SignatureKind

SKOPS_FILE = "model.skops"
PICKLE_FILE = "model.joblib"
_OTHER_FRAMEWORKS = ("lightgbm", "xgboost")


class SklearnRuntime:
    """Calls a fitted estimator; builds a DataFrame only for column signatures.

    LogisticRegression and HistGradientBoosting models (small batches) answer through a
    direct path instead (:mod:`modelport.runtimes.direct`): the estimator's checks and fixed
    cost per call dwarf a 1-row prediction.
    """

    def __init__(self, model: Any, signature: Signature) -> None:
        self._model = model
        self._frame = signature.kind is SignatureKind.COLUMNS
        proba = hasattr(model, "predict_proba")
        self._classes = getattr(model, "classes_", None) if proba else None
        self._direct = direct_path(model, signature)

    def predict(self, batch: Batch) -> Outputs:
        if self._direct is not None:
            outputs = self._direct.predict(batch)
            if outputs is not None:
                return outputs
        features = self._features(batch)
        if self._classes is not None:
            probabilities = self._model.predict_proba(features)
            return classifier_outputs(np.asarray(self._classes), probabilities)
        return {"prediction": np.asarray(self._model.predict(features))}

    def _features(self, batch: Batch) -> Any:
        if self._frame:
            import pandas as pd

            return pd.DataFrame(dict(batch.columns))
        return next(iter(batch.columns.values()))


def _handles_missing(model: object) -> bool:
    """HistGradientBoosting routes NaN down a learned branch, in scikit-learn and in its ONNX
    form alike. (Recent forests and trees take NaN too, but their ONNX conversions treat it
    differently, so they keep what the sample shows.)"""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    return isinstance(model, HistGradientBoostingClassifier | HistGradientBoostingRegressor)


class SklearnFlavor:
    name = "sklearn"
    suffixes = (".skops", ".joblib", ".pkl", ".pickle")
    file_format: str | None = None  # skops, joblib or pickle: the version's "format" option

    def accepts(self, model: object) -> bool:
        try:
            from sklearn.base import BaseEstimator
        except ImportError:
            return False
        top = type(model).__module__.split(".")[0]
        return isinstance(model, BaseEstimator) and top not in _OTHER_FRAMEWORKS

    def save(self, model: object, directory: Path, signature: Signature) -> SavedModel:
        import skops.io as sio

        path = directory / SKOPS_FILE
        sio.dump(model, path)
        # The registrant holds the live object, so the types it needs are vouched for here;
        # the SHA-256 check on load guarantees the file is still the one they vouched for.
        trusted_types = sio.get_untrusted_types(file=path)
        return SavedModel(
            "sklearn",
            {"format": "skops", "trusted_types": trusted_types},
            library_versions("scikit-learn", "skops", "numpy"),
            handles_missing=_handles_missing(model),
        )

    def import_file(self, source: Path, directory: Path, trusted: bool) -> SavedModel:
        """Adopt an existing skops or pickle file; pickle needs explicit trust.

        What the model is shows only once loaded, so a file's inputs accept missing values
        when its sample has some (or ``allow_missing`` says so), not by the model's kind.
        """
        versions = library_versions("scikit-learn", "skops", "numpy")
        if source.suffix == ".skops":
            import skops.io as sio

            check_zip_sizes(source)  # before skops opens it: no member is inflated yet
            untrusted = sio.get_untrusted_types(file=source)
            if untrusted and not trusted:
                raise UntrustedArtifactError(
                    f"{source.name} contains types skops does not trust by default: "
                    f"{', '.join(untrusted)}; review them and register with --trusted"
                )
            shutil.copyfile(source, directory / SKOPS_FILE)
            return SavedModel("sklearn", {"format": "skops", "trusted_types": untrusted}, versions)
        if not trusted:
            raise UntrustedArtifactError(
                f"{source.name} is a pickle: loading it runs arbitrary code; register it with "
                "--trusted if you created it, or save the model with skops"
            )
        shutil.copyfile(source, directory / PICKLE_FILE)
        return SavedModel("sklearn", {"format": "pickle"}, versions, needs_trust=True)

    def load(self, request: LoadRequest) -> SklearnRuntime:
        if request.options.get("format") == "pickle":
            if not request.trusted:
                raise UntrustedArtifactError(
                    "this version is a pickle and is not marked trusted; refusing to load it"
                )
            import joblib

            model = joblib.load(request.directory / PICKLE_FILE)
        else:
            import skops.io as sio

            trusted = list(request.options.get("trusted_types", []))
            check_zip_sizes(request.directory / SKOPS_FILE)  # versions stored before the check
            model = sio.load(request.directory / SKOPS_FILE, trusted=trusted)
        return SklearnRuntime(model, request.signature)
