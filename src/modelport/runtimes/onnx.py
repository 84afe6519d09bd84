"""ONNX runtime: any ONNX graph on onnxruntime's CPU provider, one thread per serving process.

Graph inputs are fed from the Batch (one tensor, or one ``[N, 1]`` input per named column);
skl2onnx-style classifier outputs (a label plus probabilities, as a tensor or a ZipMap) come
back as ``label`` / ``probabilities`` like every other classifier runtime.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from modelport.errors import ModelLoadError
from modelport.runtimes.base import LoadRequest, SavedModel, library_versions
from modelport.runtimes.batch import Batch, Outputs
from modelport.runtimes.signature import Signature, SignatureKind

if find_spec("onnxruntime") is None:  # flavors() leaves this flavor out when it is missing
    raise ImportError("onnxruntime is not installed")

MODEL_FILE = "model.onnx"
_LABELS = ("label", "output_label")
_PROBABILITIES = ("probabilities", "output_probability")
_ELEMENT_TYPES: dict[str, np.dtype[Any]] = {
    f"tensor({name})": np.dtype(dtype)
    for name, dtype in [
        ("float", "float32"),
        ("double", "float64"),
        ("float16", "float16"),
        ("bool", "bool"),
        ("int8", "int8"),
        ("int16", "int16"),
        ("int32", "int32"),
        ("int64", "int64"),
        ("uint8", "uint8"),
        ("uint16", "uint16"),
        ("uint32", "uint32"),
        ("uint64", "uint64"),
        ("string", "object"),
    ]
}


@dataclass(frozen=True, slots=True)
class _Feed:
    """How one graph input is filled: one Batch entry as is, or columns stacked side by side."""

    graph_name: str
    columns: tuple[str, ...]
    dtype: np.dtype[Any]
    stack: bool

    def array(self, batch: Batch) -> np.ndarray:
        if self.stack:
            return np.column_stack([batch.columns[c] for c in self.columns]).astype(self.dtype)
        return batch.columns[self.columns[0]].astype(self.dtype, copy=False)


class OnnxRuntime:
    """Runs one InferenceSession; output names are fixed at load, not per call."""

    def __init__(self, session: Any, signature: Signature) -> None:
        self._session = session
        self._feeds = _feeds(session.get_inputs(), signature)
        outputs = session.get_outputs()
        self._output_names = [output.name for output in outputs]
        self._classifier = _classifier_outputs(self._output_names)
        self._single = len(outputs) == 1 and len(outputs[0].shape) == 2 and outputs[0].shape[1] == 1

    def predict(self, batch: Batch) -> Outputs:
        results = self._session.run(
            self._output_names, {feed.graph_name: feed.array(batch) for feed in self._feeds}
        )
        named = {
            name: _dense(value) for name, value in zip(self._output_names, results, strict=True)
        }
        if self._classifier:
            label, probabilities = self._classifier
            return {"label": named[label], "probabilities": named[probabilities]}
        if self._single:
            return {"prediction": named[self._output_names[0]].reshape(-1)}
        return named


def _feeds(inputs: Sequence[Any], signature: Signature) -> list[_Feed]:
    """Match graph inputs to the signature: the tensor, same-named columns, or all columns."""
    unsupported = [i.name for i in inputs if i.type not in _ELEMENT_TYPES]
    if unsupported:
        raise ModelLoadError(
            f"graph input(s) {', '.join(unsupported)} have element types "
            "the onnx runtime cannot feed"
        )
    names = signature.input_names()
    if signature.kind is SignatureKind.TENSOR:
        if len(inputs) != 1:
            raise ModelLoadError(
                f"the graph has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); "
                "register it with a sample whose columns are named like the graph inputs"
            )
        return [_Feed(inputs[0].name, (names[0],), _ELEMENT_TYPES[inputs[0].type], stack=False)]
    if len(inputs) == 1 and inputs[0].name not in names:
        # one [N, k] input fed from every column in order, as MLflow feeds a DataFrame
        return [_Feed(inputs[0].name, tuple(names), _ELEMENT_TYPES[inputs[0].type], stack=True)]
    missing = [i.name for i in inputs if i.name not in names]
    if missing:
        raise ModelLoadError(
            f"graph input(s) {', '.join(missing)} have no column of that name "
            f"in the sample (columns: {', '.join(names)})"
        )
    return [
        _Feed(i.name, (i.name,), _ELEMENT_TYPES[i.type], stack=len(i.shape) != 1) for i in inputs
    ]


def _classifier_outputs(names: list[str]) -> tuple[str, str] | None:
    """The (label, probabilities) output names when the graph is an skl2onnx-style classifier."""
    label = next((name for name in names if name in _LABELS), None)
    probabilities = next((name for name in names if name in _PROBABILITIES), None)
    if len(names) == 2 and label and probabilities:
        return label, probabilities
    return None


def _dense(value: Any) -> np.ndarray:
    """A ZipMap output (one ``class -> probability`` dict per row) as a 2-D array in class order."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        classes = list(value[0])
        return np.array([[row[c] for c in classes] for row in value], dtype=np.float32)
    return np.asarray(value)


class OnnxFlavor:
    name = "onnx"
    suffixes = (".onnx",)
    file_format: str | None = "onnxv1"

    def accepts(self, model: object) -> bool:
        onnx = sys.modules.get("onnx")  # an onnx.ModelProto cannot exist unless onnx is imported
        return onnx is not None and isinstance(model, onnx.ModelProto)

    def save(self, model: object, directory: Path, signature: Signature) -> SavedModel:
        (directory / MODEL_FILE).write_bytes(model.SerializeToString())  # type: ignore[attr-defined]
        return _saved()

    def import_file(self, source: Path, directory: Path, trusted: bool) -> SavedModel:
        """Adopt a ``.onnx`` file; an ONNX graph runs no Python code, so trust is not needed."""
        shutil.copyfile(source, directory / MODEL_FILE)
        return _saved()

    def load(self, request: LoadRequest) -> OnnxRuntime:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: per-run shape warnings would flood the log
        session = ort.InferenceSession(
            str(request.directory / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )
        return OnnxRuntime(session, request.signature)


def _saved() -> SavedModel:
    return SavedModel("onnx", {"format": "onnx"}, library_versions("onnxruntime", "onnx"))
