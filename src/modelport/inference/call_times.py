"""How long one model's calls take, by batch size: what decides whether a call is cheap
enough to run on the event loop."""

from __future__ import annotations

WEIGHT_OF_NEWEST = 0.2


def size_class(rows: int) -> int:
    """``rows`` rounded up to a power of two: calls of similar size share one average."""
    return 1 << max(rows - 1, 0).bit_length()


class CallTimes:
    """Running average seconds per model call, per size class."""

    def __init__(self) -> None:
        self._seconds: dict[int, float] = {}

    def record(self, rows: int, seconds: float) -> None:
        key = size_class(rows)
        last = self._seconds.get(key)
        self._seconds[key] = seconds if last is None else last + WEIGHT_OF_NEWEST * (seconds - last)

    def estimate(self, rows: int) -> float | None:
        """The average of the smallest measured class holding at least ``rows`` rows (a call
        never gets cheaper with more rows, so it bounds this one); None when no such class
        has been measured yet: the call is then made in a thread and measured there."""
        wanted = size_class(rows)
        fitting = [key for key in self._seconds if key >= wanted]
        return self._seconds[min(fitting)] if fitting else None
