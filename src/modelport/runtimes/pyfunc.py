"""Python-function runtime: a user's own model class, saved as source code plus data files.

Nothing is pickled. A version holds the source file of the class's module (``code/``) and the
files the object lists in ``artifacts`` (``artifacts/``); loading imports that copy under a
name of its own, builds the class with no arguments and calls ``load(artifacts folder)``.
Loading runs the version's own code, so a pyfunc version must be trusted.
"""

from __future__ import annotations

import importlib.util
import inspect
import pickle
import platform
import shutil
import sys
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from modelport.errors import ConfigurationError, ModelLoadError, UntrustedArtifactError
from modelport.runtimes.base import LoadRequest, SavedModel, library_versions
from modelport.runtimes.batch import Batch, Outputs
from modelport.runtimes.signature import Signature

CODE_DIR = "code"
ARTIFACTS_DIR = "artifacts"

Prediction = Mapping[str, np.ndarray] | np.ndarray


class PyfuncModel(Protocol):
    """What the pyfunc runtime calls: ``load`` once, then ``predict`` from worker threads."""

    def load(self, artifacts: Path) -> None: ...

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction: ...


class PythonModel(ABC):
    """Subclass this for a model no built-in runtime covers.

    ``artifacts`` maps a file name to a local file or folder to ship with the version; the
    class is rebuilt with no arguments, so state must come back from those files in ``load``.
    """

    artifacts: Mapping[str, str | Path] = {}

    def load(self, artifacts: Path) -> None:  # noqa: B027 - optional hook: stateless models skip it
        """Restore state from ``artifacts`` (the folder holding the files listed above)."""

    @abstractmethod
    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
        """Columns (or the single ``input`` tensor) by name -> outputs by name, or one array."""

    def close(self) -> None:  # noqa: B027 - optional hook, as load is
        """Release what ``load`` acquired; called when a server unloads the version."""


class PyfuncRuntime:
    """Hands the Batch's arrays to the user's ``predict``; a bare array becomes ``prediction``."""

    def __init__(self, model: PyfuncModel) -> None:
        self._model = model

    def predict(self, batch: Batch) -> Outputs:
        result = self._model.predict(batch.columns)
        if isinstance(result, Mapping):
            return {str(name): np.asarray(value) for name, value in result.items()}
        return {"prediction": np.asarray(result)}

    def close(self) -> None:
        close = getattr(self._model, "close", None)
        if callable(close):
            close()


class PyfuncFlavor:
    name = "pyfunc"
    suffixes: tuple[str, ...] = ()
    file_format: str | None = "python"

    def accepts(self, model: object) -> bool:
        return isinstance(model, PythonModel)

    def save(self, model: object, directory: Path, signature: Signature) -> SavedModel:
        cls = type(model)
        if "<locals>" in cls.__qualname__:
            raise ConfigurationError(
                f"{cls.__qualname__} is defined inside a function; "
                "define it at module level so it can be imported again"
            )
        source = _source_file(cls)
        (directory / CODE_DIR).mkdir()
        shutil.copyfile(source, directory / CODE_DIR / source.name)
        _copy_artifacts(getattr(model, "artifacts", {}), directory / ARTIFACTS_DIR)
        options = {"class": f"{cls.__module__}:{cls.__qualname__}", "source": source.name}
        versions = {**library_versions("numpy"), "python": platform.python_version()}
        return SavedModel("pyfunc", options, versions, needs_trust=True)

    def import_file(self, source: Path, directory: Path, trusted: bool) -> SavedModel:
        raise ConfigurationError("a pyfunc model is registered from a live object, not a file")

    def load(self, request: LoadRequest) -> PyfuncRuntime:
        if not request.trusted:
            raise UntrustedArtifactError(
                "this pyfunc version runs its own Python code on load "
                "and is not marked trusted; refusing to load it"
            )
        path = request.directory / CODE_DIR / request.options["source"]
        cls = _import_class(path, request.options["class"].partition(":")[2])
        model: PyfuncModel = cls()
        model.load(request.directory / ARTIFACTS_DIR)
        return PyfuncRuntime(model)


def _source_file(cls: type) -> Path:
    try:
        source = inspect.getsourcefile(cls)
    except TypeError:
        source = None
    if source is None or not Path(source).is_file():
        raise ConfigurationError(
            f"cannot find the source file of {cls.__qualname__} (defined "
            "interactively?); define it in a .py file"
        )
    return Path(source)


def _copy_artifacts(artifacts: Mapping[str, str | Path], target: Path) -> None:
    for name, location in artifacts.items():
        if name in ("", ".", "..") or Path(name).name != name:
            raise ConfigurationError(f"artifact name {name!r} must be a plain file name")
        source = Path(location)
        target.mkdir(exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target / name)
        elif source.is_file():
            shutil.copyfile(source, target / name)
        else:
            raise ConfigurationError(f"artifact {name!r}: {source} does not exist")


def _import_class(path: Path, qualname: str) -> Any:
    """Import the version's copy of its module under a unique name, so versions never collide."""
    module_name = f"_modelport_pyfunc_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"cannot import the model code {path.name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and typing look classes up by module name
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    finally:
        sys.path.remove(str(path.parent))
    target: Any = module
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


@dataclass(frozen=True, slots=True)
class MlflowContext:
    """The ``context`` an MLflow ``PythonModel`` expects: its artifacts by name, its config."""

    artifacts: dict[str, str]
    model_config: dict[str, Any] = field(default_factory=dict)


class MlflowPythonModel(PythonModel):
    """Calls an MLflow ``PythonModel`` read from its cloudpickle (only in a trusted version)."""

    PICKLE = "python_model.pkl"

    def __init__(self, artifacts: Mapping[str, str | Path] | None = None) -> None:
        self.artifacts = dict(artifacts or {})
        self._model: Any = None
        self._context = MlflowContext({})
        self._takes_context = True

    def load(self, artifacts: Path) -> None:
        with (artifacts / self.PICKLE).open("rb") as handle:
            self._model = pickle.load(handle)  # cloudpickle output; trust was checked on load
        files = {p.name: str(p) for p in sorted(artifacts.iterdir()) if p.name != self.PICKLE}
        self._context = MlflowContext(files)
        self._model.load_context(self._context)
        self._takes_context = "context" in inspect.signature(self._model.predict).parameters

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
        data = _mlflow_input(inputs)
        if self._takes_context:
            result = self._model.predict(self._context, data)
        else:
            result = self._model.predict(data)
        if hasattr(result, "columns") and hasattr(result, "to_numpy"):  # a DataFrame
            return {str(column): result[column].to_numpy() for column in result.columns}
        return np.asarray(result)


def _mlflow_input(inputs: Mapping[str, np.ndarray]) -> Any:
    """A single 2-D tensor stays an array; columns become the DataFrame MLflow models expect."""
    if len(inputs) == 1 and next(iter(inputs.values())).ndim == 2:
        return next(iter(inputs.values()))
    import pandas as pd

    return pd.DataFrame(dict(inputs))
