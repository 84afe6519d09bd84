"""Reading model inputs from files for `register --sample` and `predict --input`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from modelport.errors import InvalidInputError


def read_input(path: str) -> Any:
    """Rows from ``.csv`` (a DataFrame), ``.npy`` or JSON (``-`` reads JSON from stdin).

    JSON may be a list of rows, ``{"column": [values]}``, or a V1 body with ``instances`` /
    ``inputs``.
    """
    if path == "-":
        return _from_json(sys.stdin.read(), "stdin")
    file = Path(path)
    if not file.is_file():
        raise InvalidInputError(f"input file {path} does not exist", pointer="/input")
    if file.suffix == ".csv":
        import pandas as pd

        return pd.read_csv(file)
    if file.suffix == ".npy":
        return np.load(file, allow_pickle=False)
    return _from_json(file.read_text(), path)


def _from_json(text: str, where: str) -> Any:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{where} is not valid JSON: {exc}", pointer="/input") from exc
    if isinstance(data, dict) and len(data) == 1 and ("instances" in data or "inputs" in data):
        data = next(iter(data.values()))
    if isinstance(data, dict):
        return {name: np.asarray(values) for name, values in data.items()}
    if isinstance(data, list) and data and all(isinstance(row, dict) for row in data):
        return {name: np.asarray([row[name] for row in data]) for name in data[0]}
    return np.asarray(data)
