"""Adjusted p-values for several metrics (or variants) tested at once: compare each with the
same alpha as a single test.

With m p-values sorted ascending, p_(1) ≤ … ≤ p_(m):

* Holm (controls the family-wise error rate): adj_(i) = max_{j ≤ i} min(1, (m - j + 1) · p_(j)).
* Benjamini-Hochberg (controls the false discovery rate):
  adj_(i) = min_{j ≥ i} min(1, m / j · p_(j)).

Both come back in the order given. Ties get equal adjusted values.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from modelport.errors import InvalidInputError
from modelport.experiments.analysis.checks import FloatArray


def holm(p_values: npt.ArrayLike) -> FloatArray:
    """Holm's step-down adjusted p-values, in input order."""
    values = _p_values(p_values)
    order = np.argsort(values, kind="stable")
    m = values.size
    scaled = np.minimum(1.0, (m - np.arange(m)) * values[order])
    return _in_input_order(np.maximum.accumulate(scaled), order)


def benjamini_hochberg(p_values: npt.ArrayLike) -> FloatArray:
    """Benjamini-Hochberg step-up adjusted p-values (q-values), in input order."""
    values = _p_values(p_values)
    order = np.argsort(values, kind="stable")
    m = values.size
    scaled = np.minimum(1.0, m / np.arange(1, m + 1) * values[order])
    return _in_input_order(np.minimum.accumulate(scaled[::-1])[::-1], order)


def _p_values(p_values: npt.ArrayLike) -> FloatArray:
    try:
        values = np.asarray(p_values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"p_values must be numbers: {exc}", pointer="/p_values") from exc
    if values.ndim != 1:
        raise InvalidInputError(
            f"p_values must be a flat list, not shape {values.shape}", pointer="/p_values"
        )
    if not np.all((values >= 0.0) & (values <= 1.0)):  # NaN fails too
        raise InvalidInputError("every p-value must be in [0, 1]", pointer="/p_values")
    return values


def _in_input_order(adjusted: FloatArray, order: npt.NDArray[np.intp]) -> FloatArray:
    result = np.empty_like(adjusted)
    result[order] = adjusted
    return result
