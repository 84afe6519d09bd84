"""The canonical in-memory form of a prediction request: a columnar Batch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Batch:
    """Ordered ``name -> array`` with a common first dimension of ``n_rows``.

    Tensor models carry one entry (a 2-D array); column models carry one 1-D array per column.
    """

    columns: Mapping[str, np.ndarray]
    n_rows: int

    def __post_init__(self) -> None:
        for name, array in self.columns.items():
            if array.shape[:1] != (self.n_rows,):
                raise ValueError(f"column {name!r} has {array.shape[:1]} rows, not {self.n_rows}")

    @classmethod
    def of(cls, columns: Mapping[str, np.ndarray]) -> Batch:
        """Build a batch whose row count is taken from its columns."""
        first = next(iter(columns.values()))
        return cls(columns=dict(columns), n_rows=int(first.shape[0]))

    def slice(self, start: int, stop: int) -> Batch:
        return Batch({k: v[start:stop] for k, v in self.columns.items()}, stop - start)


Outputs = dict[str, np.ndarray]
"""What a runtime returns: ordered ``output name -> array`` with ``n_rows`` first."""
