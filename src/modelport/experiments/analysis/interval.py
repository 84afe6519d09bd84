"""A point estimate with its interval, and the JSON form every result of the engine uses."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeAlias

JsonValue: TypeAlias = str | int | float | bool | list["JsonValue"] | dict[str, "JsonValue"] | None
"""What ``json.dumps(..., allow_nan=False)`` accepts: every ``to_dict`` here returns it."""

NAN = math.nan


def json_float(value: float) -> float | None:
    """A finite float as itself; NaN and ±inf (an undefined or unbounded figure) as None."""
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class Interval:
    """An estimate and its two-sided interval; NaN where the data cannot define them."""

    estimate: float
    low: float
    high: float

    def to_dict(self) -> dict[str, JsonValue]:
        return {
            "estimate": json_float(self.estimate),
            "low": json_float(self.low),
            "high": json_float(self.high),
        }
