"""Import an MLflow model folder as a registry version, keeping its lineage.

Only the ``MLmodel`` YAML and the flavor's own files are read, so a local folder imports
without mlflow installed; ``runs:/`` and ``models:/`` URIs are downloaded through mlflow.
Pickled flavors (cloudpickle sklearn, ``python_function`` models) need ``trusted=True``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import yaml

from modelport.errors import (
    ConfigurationError,
    InvalidInputError,
    ModelLoadError,
    UntrustedArtifactError,
)
from modelport.registry.address import check_name
from modelport.registry.preparation import PreparedModel, prepare_file, prepare_object
from modelport.registry.records import VersionRecord
from modelport.registry.registry import Registry
from modelport.registry.scratch import scratch_folder
from modelport.runtimes.pyfunc import MlflowPythonModel

MLMODEL = "MLmodel"
_DATA_FLAVORS = ("onnx", "lightgbm", "xgboost")  # each keeps its one model file under "data"
_LINEAGE_KEYS = ("run_id", "model_uuid", "model_id", "artifact_path", "mlflow_version")
_MLFLOW_DTYPES = {
    "double": "float64",
    "float": "float32",
    "long": "int64",
    "integer": "int32",
    "boolean": "bool",
    "string": "object",
}


def import_mlflow(
    registry: Registry,
    path_or_uri: str | Path,
    name: str,
    *,
    trusted: bool = False,
    sample: Any = None,
) -> VersionRecord:
    """Register the MLflow model at ``path_or_uri`` as the next version of ``name``.

    ``sample`` is the input used to infer the signature; without it the model's own input
    example is used, and failing that a row of zeros built from its MLflow signature.
    """
    check_name(name)  # before anything is downloaded or loaded
    with _local_folder(str(path_or_uri), registry.scratch_dir) as folder:
        mlmodel = _read_mlmodel(folder)
        example = sample if sample is not None else _sample(folder, mlmodel)
        with _preparing(folder, mlmodel, example, trusted, registry.scratch_dir) as prepared:
            lineage = {
                "source": "mlflow",
                "uri": str(path_or_uri),
                **{key: mlmodel.get(key) for key in _LINEAGE_KEYS},
            }
            return registry.register(name, prepared, lineage=lineage)


@contextmanager
def _local_folder(uri: str, scratch: Path | None) -> Iterator[Path]:
    """A local folder for a path, a ``file://`` URI, or anything mlflow can download."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        yield Path(url2pathname(parsed.path) if parsed.scheme else uri)
        return
    try:
        from mlflow.artifacts import download_artifacts
        from mlflow.exceptions import MlflowException
    except ImportError as exc:
        raise ConfigurationError(
            f"{uri} is an MLflow URI and resolving it needs mlflow "
            "(pip install 'modelport[mlflow]'); or pass a local folder"
        ) from exc
    with scratch_folder(scratch) as folder:
        try:
            local = download_artifacts(artifact_uri=uri, dst_path=str(folder))
        except (MlflowException, OSError) as exc:
            raise ModelLoadError(f"mlflow could not download {uri}: {exc}") from exc
        yield Path(local)


def _read_mlmodel(folder: Path) -> dict[str, Any]:
    path = folder / MLMODEL
    if not path.is_file():
        raise ModelLoadError(f"{folder} is not an MLflow model folder (it has no {MLMODEL} file)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ModelLoadError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("flavors"), dict):
        raise ModelLoadError(f"{path} lists no flavors")
    return data


def _preparing(
    folder: Path, mlmodel: Mapping[str, Any], sample: Any, trusted: bool, scratch: Path | None
) -> AbstractContextManager[PreparedModel]:
    """Stage the most specific flavor the folder offers; pyfunc code is the last resort."""
    flavors: Mapping[str, Any] = mlmodel["flavors"]
    if "sklearn" in flavors:  # model.skops, or a (cloud)pickle that prepare_file makes us trust
        return prepare_file(
            folder / flavors["sklearn"]["pickled_model"], sample, trusted=trusted, scratch=scratch
        )
    for flavor in _DATA_FLAVORS:
        if flavor in flavors:
            return prepare_file(
                folder / flavors[flavor]["data"], sample, trusted=trusted, scratch=scratch
            )
    python_model = flavors.get("python_function", {}).get("python_model")
    if python_model is None:
        raise ConfigurationError(
            f"MLflow flavor(s) {', '.join(flavors)} cannot be imported; "
            f"modelport reads sklearn, {', '.join(_DATA_FLAVORS)} and "
            "python_function models"
        )
    if not trusted:
        raise UntrustedArtifactError(
            f"{python_model} is a cloudpickle: loading it runs arbitrary "
            "code; import it with trusted=True if you trust its author"
        )
    listed = flavors["python_function"].get("artifacts") or {}
    artifacts = {artifact: folder / entry["path"] for artifact, entry in listed.items()}
    model = MlflowPythonModel({MlflowPythonModel.PICKLE: folder / python_model, **artifacts})
    return prepare_object(model, sample, flavor="pyfunc", scratch=scratch)


def _sample(folder: Path, mlmodel: Mapping[str, Any]) -> Any:
    """The saved input example, else a row of zeros / empty strings from the signature."""
    info = mlmodel.get("saved_input_example_info") or {}
    example = folder / info.get("artifact_path", "input_example.json")
    if example.is_file():
        return _decode_example(json.loads(example.read_text(encoding="utf-8")))
    signature = mlmodel.get("signature") or {}
    if not signature.get("inputs"):
        raise InvalidInputError(
            "the MLflow model has no input example and no signature; pass a sample input",
            pointer="/sample",
        )
    return _zeros(json.loads(signature["inputs"]))


def _decode_example(data: Any) -> Any:
    """MLflow's example forms: split DataFrame, ``inputs`` / ``instances``, records, array."""
    if isinstance(data, dict) and "dataframe_split" in data:
        data = data["dataframe_split"]
    if isinstance(data, dict) and "columns" in data and "data" in data:
        import pandas as pd

        return pd.DataFrame(data["data"], columns=data["columns"])
    if isinstance(data, dict) and len(data) == 1 and ("inputs" in data or "instances" in data):
        data = next(iter(data.values()))
    if isinstance(data, list) and data and isinstance(data[0], dict):
        import pandas as pd

        return pd.DataFrame(data)
    return data if isinstance(data, dict) else np.asarray(data)


def _zeros(specs: list[dict[str, Any]]) -> Any:
    """One neutral row that matches an MLflow column or tensor signature."""
    if len(specs) == 1 and specs[0].get("type") == "tensor":
        tensor = specs[0]["tensor-spec"]
        shape = [1 if size == -1 else size for size in tensor["shape"]]
        return np.zeros(shape, dtype=tensor["dtype"])
    unusable = [s for s in specs if s.get("type") not in _MLFLOW_DTYPES or "name" not in s]
    if unusable:
        raise InvalidInputError(
            f"cannot build a sample from the MLflow signature input "
            f"{unusable[0]}; pass a sample input",
            pointer="/sample",
        )
    return {
        spec["name"]: np.array(
            [""] if spec["type"] == "string" else [0], dtype=_MLFLOW_DTYPES[spec["type"]]
        )
        for spec in specs
    }
