"""Which row of an MLflow body broke the signature, so the error can point at it.

Runs on the error path only: the whole batch was refused by ``Signature.conform``; each input
is checked alone, in signature order (the order ``conform`` checks them), and the first
refused one is bisected over row prefixes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

import numpy as np

from modelport.errors import InvalidInputError
from modelport.runtimes.signature import STRING, Signature


class RowPlace(Protocol):
    def row(self, index: int) -> str: ...


def row_locator(
    signature: Signature, arrays: dict[str, np.ndarray], places: Mapping[str, RowPlace]
) -> Callable[[InvalidInputError], InvalidInputError]:
    """A function that turns a batch-level signature error into one naming the row."""

    def locate(exc: InvalidInputError) -> InvalidInputError:
        found = first_bad_row(signature, arrays)
        if found is None:
            return exc
        name, row = found
        located = type(exc)(f"{exc.detail} (row {row})", pointer=places[name].row(row))
        located.__cause__ = exc
        return located

    return locate


def first_bad_row(signature: Signature, arrays: dict[str, np.ndarray]) -> tuple[str, int] | None:
    """The input and row of the first value refused; None unless the fault lies in a row."""
    if set(arrays) != set(signature.input_names()):
        return None
    for spec in signature.inputs:
        alone, array = Signature(signature.kind, (spec,)), arrays[spec.name]
        if _accepts(alone, spec.name, array):
            continue
        if array.ndim == 0 or len(array) == 0:
            return None
        if spec.dtype != STRING and _has_text(array):
            row = _first_non_number(array)
            return None if row is None else (spec.name, row)
        low, high = 1, len(array)  # the shortest refused prefix has a length in [low, high]
        while low < high:
            middle = (low + high) // 2
            if _accepts(alone, spec.name, array[:middle]):
                low = middle + 1
            else:
                high = middle
        return spec.name, low - 1
    return None


def _accepts(signature: Signature, name: str, array: np.ndarray) -> bool:
    try:
        signature.conform({name: array})
    except InvalidInputError:
        return False
    return True


def _has_text(array: np.ndarray) -> bool:
    """Text in a numeric input: numpy makes ``[3, "old"]`` all strings, and pandas does the same
    to a CSV column with one bad cell, so every row's prefix is refused and bisection can't help.
    """
    kind = array.dtype.kind
    return kind in "US" or (kind == "O" and any(isinstance(v, str) for v in array.ravel()))


def _first_non_number(array: np.ndarray) -> int | None:
    """The first row holding text that no JSON or CSV number could have become."""
    for index, row in enumerate(array.reshape(len(array), -1).tolist()):
        for value in row:
            try:
                float(value)
            except ValueError:
                return index
    return None
