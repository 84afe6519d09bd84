"""Durations and times as people type them on a command line or in a request: ``90d``,
``12h``, ``30m``, or an ISO 8601 time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

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


def parse_instant(text: str, field: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (UTC unless it says otherwise) or an age such as ``24h`` or ``7d``."""
    if _DURATION.match(text):
        return (now or datetime.now(UTC)) - parse_duration(text, field=field)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInputError(
            f"{field} must be an ISO 8601 time or an age such as 30m, 24h, 7d, got {text!r}",
            pointer=f"/{field}",
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
