"""Reading model inputs for `register --sample`, `--reference` and `predict --input`: files or
stdin.

A file's suffix says what it holds (``.csv``, ``.npy``, ``.json``, ``.parquet``); stdin and
other suffixes are sniffed (NumPy's magic bytes, JSON's ``{`` or ``[``, else CSV). When the
model is known, its :class:`InputLayout` settles what a file alone cannot: whether a CSV's
first line is a header (a row as wide as the model's input that names none of its columns is
data), and how named columns map onto a tensor model or positional rows onto a columns model.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelport.errors import InvalidInputError
from modelport.runtimes.signature import Signature, SignatureKind

_NPY_MAGIC = b"\x93NUMPY"


@dataclass(frozen=True, slots=True)
class InputLayout:
    """What a model takes, as far as shaping an input file needs to know."""

    tensor: bool
    """One 2-D input with features by position, rather than named columns."""
    names: tuple[str, ...]
    width: int
    """Features per row (tensor) or number of columns."""

    @classmethod
    def of(cls, signature: Signature) -> InputLayout:
        if signature.kind is SignatureKind.TENSOR:
            return cls(True, tuple(signature.input_names()), signature.inputs[0].width)
        return cls(False, tuple(signature.input_names()), len(signature.inputs))

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> InputLayout:
        """From Open Inference Protocol V2 model metadata, as a server reports it."""
        inputs = metadata.get("inputs") or []
        names = tuple(str(spec["name"]) for spec in inputs)
        if len(inputs) == 1 and len(inputs[0]["shape"]) == 2:
            return cls(True, names, int(inputs[0]["shape"][1]))
        return cls(False, names, len(names))


def read_input(source: str, layout: InputLayout | None = None) -> Any:
    """Rows from a file or ``-`` (stdin): an ndarray, a DataFrame or ``{column: values}``.

    JSON may be a list of rows, ``{"column": [values]}``, a list of row objects, or a V1 body
    with ``instances`` / ``inputs``.
    """
    where, payload = _read_bytes(source)
    kind = {".csv": "csv", ".npy": "npy", ".json": "json", ".parquet": "parquet"}.get(
        Path(where).suffix
    )
    if kind is None:
        kind = _sniff(payload)
    if kind == "parquet":
        return _from_parquet(payload, where, layout)
    if kind == "npy":
        return _fitted(np.load(io.BytesIO(payload), allow_pickle=False), layout)
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{where} is not UTF-8 text: {exc}", pointer="/input") from exc
    if kind == "csv":
        return _from_csv(text, where, layout)
    return _from_json(text, where, layout)


def _from_parquet(payload: bytes, where: str, layout: InputLayout | None) -> Any:
    import pandas as pd

    try:
        frame = pd.read_parquet(io.BytesIO(payload))
    except ImportError as exc:
        raise InvalidInputError(
            f"{where}: Parquet needs the parquet extra (pip install 'modelport[parquet]')",
            pointer="/input",
        ) from exc
    except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise InvalidInputError(f"{where} is not a Parquet file: {exc}", pointer="/input") from exc
    return frame.to_numpy() if layout is not None and layout.tensor else frame


def _read_bytes(source: str) -> tuple[str, bytes]:
    if source == "-":
        return "stdin", sys.stdin.buffer.read()
    file = Path(source)
    if not file.is_file():
        raise InvalidInputError(f"input file {source} does not exist", pointer="/input")
    return source, file.read_bytes()


def _sniff(payload: bytes) -> str:
    if payload.startswith(_NPY_MAGIC):
        return "npy"
    start = payload.lstrip()[:1]
    return "json" if start in (b"{", b"[") else "csv"


def _from_csv(text: str, where: str, layout: InputLayout | None) -> Any:
    import pandas as pd

    first = next(csv.reader(io.StringIO(text)), None)
    if not first:
        raise InvalidInputError(f"{where} is empty: send at least one row", pointer="/input")
    header = _is_header([field.strip() for field in first], layout)
    frame = pd.read_csv(io.StringIO(text), header=0 if header else None)
    if layout is None:
        return frame if header else frame.to_numpy()
    if layout.tensor:
        return frame.to_numpy()
    if not header:
        if frame.shape[1] != layout.width:
            raise InvalidInputError(
                f"{where} has {frame.shape[1]} columns and no header; the model takes "
                f"{layout.width}: {', '.join(layout.names)}",
                pointer="/input",
            )
        frame.columns = list(layout.names)
    return frame


def _is_header(fields: list[str], layout: InputLayout | None) -> bool:
    """Whether a CSV's first line names columns rather than holding the first row.

    For a columns model, a line naming any of its columns is a header, and a line as wide as
    its input that names none of them is data. Otherwise a line with anything but numbers is
    a header, as is pandas' default header ``0,1,2,...``; an all-numeric line is data.
    """
    if layout is not None and not layout.tensor:
        if set(fields) & set(layout.names):
            return True
        if len(fields) == layout.width:
            return False
    if not all(_is_number(field) for field in fields):
        return True
    return fields == [str(i) for i in range(len(fields))]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _from_json(text: str, where: str, layout: InputLayout | None) -> Any:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{where} is not valid JSON: {exc}", pointer="/input") from exc
    if isinstance(data, dict) and len(data) == 1 and ("instances" in data or "inputs" in data):
        data = next(iter(data.values()))
    if isinstance(data, list) and data and all(isinstance(row, dict) for row in data):
        data = {name: [row.get(name) for row in data] for name in data[0]}
    if isinstance(data, dict):
        return _fitted({name: np.asarray(values) for name, values in data.items()}, layout)
    if (
        layout is not None
        and not layout.tensor
        and isinstance(data, list)
        and data
        and all(isinstance(row, list) and len(row) == layout.width for row in data)
    ):
        # positional rows of a columns model: transposed as lists, so [34, "paris"] keeps
        # its number a number
        return {name: np.asarray([row[i] for row in data]) for i, name in enumerate(layout.names)}
    return _fitted(np.asarray(data), layout)


def _fitted(data: np.ndarray | dict[str, np.ndarray], layout: InputLayout | None) -> Any:
    """Named columns for a tensor model become one 2-D array (in the order given), and a
    2-D array for a columns model becomes its columns in signature order."""
    if layout is None:
        return data
    if layout.tensor and isinstance(data, dict):
        arrays = list(data.values())
        if len(arrays) == 1 and arrays[0].ndim == 2:
            return arrays[0]
        return np.column_stack(arrays) if arrays else data
    if (
        not layout.tensor
        and isinstance(data, np.ndarray)
        and data.ndim == 2
        and data.shape[1] == layout.width
    ):
        return {name: data[:, i] for i, name in enumerate(layout.names)}
    return data
