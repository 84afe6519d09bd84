"""What every codec hands the inference service: named arrays, where they came from, extras."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from modelport.errors import InvalidInputError, MalformedRequestError

T = TypeVar("T")

MAX_INPUTS = 4096
"""Named inputs or columns one request may carry: more is refused before any is converted
(a CSV with 300k columns took 22 s and 1 GiB to refuse)."""


@dataclass(frozen=True, slots=True)
class Decoded(Generic[T]):
    """A request body as ``input name -> array`` for one signature.

    ``pointers`` name the field each input came from, so signature errors point at what the
    client sent. ``extras`` is what the codec needs again to encode the answer (the requested
    outputs, the client's request id). ``locate`` may sharpen a signature error (MLflow
    points at the first offending row).
    """

    arrays: dict[str, np.ndarray]
    pointers: Mapping[str, str]
    extras: T
    locate: Callable[[InvalidInputError], InvalidInputError] | None = None


def check_input_count(count: int, pointer: str) -> None:
    if count > MAX_INPUTS:
        raise MalformedRequestError(
            f"{count} inputs or columns; at most {MAX_INPUTS} are accepted in one request",
            pointer=pointer,
        )
