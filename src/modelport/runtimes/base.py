"""The runtime contract: how a model is saved into files and loaded back to predict.

A *flavor* knows one framework: it recognises a fitted model object, saves it into a folder
and loads that folder into a *runtime*, whose only job is ``predict(Batch) -> Outputs``.
Flavors are discovered through the ``modelport.runtimes`` entry-point group, so a package
can add its own without touching modelport.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points, version
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from modelport.errors import (
    ConfigurationError,
    InvalidInputError,
    ModelError,
    ModelLoadError,
    ModelportError,
)
from modelport.runtimes.batch import Batch, Outputs
from modelport.runtimes.signature import Signature

ENTRY_POINT_GROUP = "modelport.runtimes"


@runtime_checkable
class Runtime(Protocol):
    """A loaded model. ``predict`` is called from worker threads, never on the event loop.

    A runtime that holds resources beyond memory (native sessions, files) may also define
    ``close()``; servers call it through :func:`close_runtime` when they unload the version.
    """

    def predict(self, batch: Batch) -> Outputs: ...


def close_runtime(runtime: Runtime) -> None:
    """Call the runtime's optional ``close()``."""
    close = getattr(runtime, "close", None)
    if callable(close):
        close()


@dataclass(frozen=True, slots=True)
class SavedModel:
    """What a flavor reports after writing a model's files."""

    framework: str
    options: Mapping[str, Any] = field(default_factory=dict)
    library_versions: Mapping[str, str] = field(default_factory=dict)
    needs_trust: bool = False
    handles_missing: bool = False
    """The model treats NaN as "missing" itself (gradient-boosted trees): unless the registrant
    says otherwise, its numeric inputs then accept NaN / null."""


@dataclass(frozen=True, slots=True)
class LoadRequest:
    """Everything a flavor needs to load a verified artifact folder."""

    directory: Path
    signature: Signature
    options: Mapping[str, Any]
    trusted: bool


class Flavor(Protocol):
    name: str
    suffixes: tuple[str, ...]
    """File suffixes :meth:`import_file` adopts (``modelport register NAME FILE``)."""
    file_format: str | None
    """The saved files' format, for V2 platform names (``onnx_onnxv1``); None when each
    version's ``format`` option says (scikit-learn: skops, joblib or pickle)."""

    def accepts(self, model: object) -> bool:
        """True when ``model`` is a fitted object of this framework."""
        ...

    def save(self, model: object, directory: Path, signature: Signature) -> SavedModel: ...

    def import_file(self, source: Path, directory: Path, trusted: bool) -> SavedModel:
        """Copy an already-saved model file into ``directory``."""
        ...

    def load(self, request: LoadRequest) -> Runtime: ...


@cache
def flavors() -> dict[str, Flavor]:
    """Installed flavors by name, in entry-point order."""
    found: dict[str, Flavor] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[point.name] = point.load()()
        except ImportError:
            continue  # optional framework not installed; its flavor is simply absent
    return found


def flavor_named(name: str) -> Flavor:
    try:
        return flavors()[name]
    except KeyError:
        installed = ", ".join(flavors()) or "none"
        raise ConfigurationError(
            f"runtime {name!r} is not installed (installed: {installed}); "
            f"try `pip install modelport[{name}]`"
        ) from None


def flavor_for(model: object) -> Flavor:
    """The flavor that can save ``model``; pyfunc comes last as the general fallback."""
    ordered = sorted(flavors().values(), key=lambda f: f.name == "pyfunc")
    for flavor in ordered:
        if flavor.accepts(model):
            return flavor
    raise ConfigurationError(f"no installed runtime can save a {type(model).__qualname__}")


def flavor_for_file(path: Path) -> Flavor:
    for flavor in flavors().values():
        if path.suffix in flavor.suffixes:
            return flavor
    known = sorted({s for f in flavors().values() for s in f.suffixes})
    raise InvalidInputError(
        f"no installed runtime reads {path.name!r} (known: {', '.join(known)})", pointer="/artifact"
    )


def library_versions(*packages: str) -> dict[str, str]:
    return {name: version(name) for name in packages}


def call_model(runtime: Runtime, batch: Batch) -> Outputs:
    """Run ``predict`` and translate a model's own failure into a 500 ``model_error``."""
    try:
        outputs = runtime.predict(batch)
    except Exception as exc:
        raise ModelError(f"{type(exc).__name__}: {exc}") from exc
    for name, array in outputs.items():
        if array.shape[:1] != (batch.n_rows,):
            raise ModelError(
                f"output {name!r} has {array.shape[:1]} rows for {batch.n_rows} inputs"
            )
    return outputs


def load_runtime(flavor_name: str, request: LoadRequest) -> Runtime:
    """Load through the named flavor; any failure becomes ``ModelLoadError``."""
    flavor = flavor_named(flavor_name)
    try:
        return flavor.load(request)
    except ModelportError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"{flavor_name} could not load the model: {exc}") from exc


def classifier_outputs(classes: np.ndarray, probabilities: np.ndarray) -> Outputs:
    """Label and probability outputs shared by every classifier runtime."""
    probabilities = np.asarray(probabilities)
    return {"label": classes[np.argmax(probabilities, axis=1)], "probabilities": probabilities}
