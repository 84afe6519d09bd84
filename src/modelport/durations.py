"""Durations as people type them on a command line or in a request: ``90d``, ``12h``, ``30m``."""

from __future__ import annotations

import re
from datetime import timedelta

from modelport.errors import InvalidInputError

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(text: str, *, field: str = "duration") -> timedelta:
    match = _DURATION.match(text)
    if match is None:
        raise InvalidInputError(
            f"{field} {text!r} is not a duration; write a number and a unit of "
            "s, m, h, d or w (e.g. 90d, 12h)",
            pointer=f"/{field}",
        )
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
