"""Input checks shared by the analyses: what a caller can get wrong raises InvalidInputError
naming the argument, before any arithmetic could warn or return nonsense."""

from __future__ import annotations

import math
import numbers

import numpy as np
import numpy.typing as npt

from modelport.errors import InvalidInputError

FloatArray = npt.NDArray[np.float64]

MAX_MAGNITUDE = 1e100
"""Larger values could overflow a sum of squares (a variance) to inf."""
MIN_SAMPLE = 2
"""A variance (n - 1) needs two values per group."""


def sample(values: npt.ArrayLike, name: str, *, minimum: int = MIN_SAMPLE) -> FloatArray:
    """`values` as a 1-D float array of finite numbers holding at least `minimum` of them."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must hold numbers: {exc}", pointer=f"/{name}") from exc
    if array.ndim != 1:
        raise InvalidInputError(
            f"{name} must be one value per unit (1-D), not shape {array.shape}", pointer=f"/{name}"
        )
    if not np.all(np.isfinite(array)):
        raise InvalidInputError(
            f"{name} holds NaN or infinite values; drop or impute them first", pointer=f"/{name}"
        )
    if array.size and float(np.abs(array).max()) > MAX_MAGNITUDE:
        raise InvalidInputError(
            f"{name} holds values beyond ±{MAX_MAGNITUDE:g}: rescale the metric", pointer=f"/{name}"
        )
    if array.size < minimum:
        raise InvalidInputError(
            f"{name} needs at least {minimum} values, has {array.size}", pointer=f"/{name}"
        )
    return array


def count(value: int, name: str, *, minimum: int = 0) -> int:
    """A whole number of units or successes, at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidInputError(f"{name} must be a whole number, not {value!r}", pointer=f"/{name}")
    if value < minimum:
        raise InvalidInputError(
            f"{name} must be at least {minimum}, not {value}", pointer=f"/{name}"
        )
    return int(value)


def successes_of(successes: int, n: int, group: str) -> tuple[int, int]:
    """Successes and units of one group of a proportion: 0 ≤ successes ≤ n, n ≥ 1."""
    units = count(n, f"n_{group}", minimum=1)
    hits = count(successes, f"successes_{group}")
    if hits > units:
        raise InvalidInputError(
            f"successes_{group} ({hits}) exceeds n_{group} ({units})", pointer=f"/successes_{group}"
        )
    return hits, units


def open_unit(value: float, name: str) -> float:
    """A probability strictly between 0 and 1 (alpha, power, a baseline rate)."""
    number = float(value)
    if not 0.0 < number < 1.0:  # NaN fails too
        raise InvalidInputError(
            f"{name} must be strictly between 0 and 1, got {value}", pointer=f"/{name}"
        )
    return number


def positive(value: float, name: str) -> float:
    number = float(value)
    if not (math.isfinite(number) and number > 0.0):
        raise InvalidInputError(
            f"{name} must be a positive number, got {value}", pointer=f"/{name}"
        )
    return number


def nonzero(value: float, name: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number == 0.0:
        raise InvalidInputError(
            f"{name} must be a finite number other than 0, got {value}", pointer=f"/{name}"
        )
    return number
