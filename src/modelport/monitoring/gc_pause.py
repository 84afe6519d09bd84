"""The cyclic garbage collector paused while a window of the prediction log is summarised.

A drift or quality window is up to a million logged requests, each read as a row and parsed
into dicts and lists. With the collector on, a serving process (first-generation threshold
10,000) ran about 400 collections during a million-row drift report: a tenth of the report's
CPU, and the longest, a full collection of about 100 ms, held the GIL, so every request of
the process waited that long. Nothing in a window forms reference cycles; reference counting
frees it all when the report is done.

The collector is process-wide: pauses taken by several threads at once end when the last one
does, and a collector that was already off stays off.
"""

from __future__ import annotations

import gc
import threading
from contextlib import ContextDecorator
from typing import Any


class _Pause(ContextDecorator):
    """``with gc_paused:`` or ``@gc_paused``: no cyclic collection runs in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._resume = False

    def __enter__(self) -> None:
        with self._lock:
            if self._holders == 0:
                self._resume = gc.isenabled()
                gc.disable()
            self._holders += 1

    def __exit__(self, *_exc: Any) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0 and self._resume:
                gc.enable()


gc_paused = _Pause()
