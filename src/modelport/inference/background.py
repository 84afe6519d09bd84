"""A step a server repeats in the background: poll the registry, write figures, step rollouts.

It runs every interval, or at once when woken (after a change made through this process).
A failure never ends the loop: a :class:`~modelport.errors.ModelportError` (the database is
unreachable, say) is logged once per outage rather than at every attempt, anything else with
its traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from modelport.errors import ModelportError


class Repeated:
    def __init__(self, what: str, step: Callable[[], Awaitable[None]], log: logging.Logger) -> None:
        """``what``: the step in words, for the log (``checking the registry for changes``)."""
        self._what = what
        self._step = step
        self._log = log
        self._wake = asyncio.Event()
        self._failing = False

    def wake(self) -> None:
        self._wake.set()

    async def forever(self, interval_s: float) -> None:
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation that
            # meets a wake-up, and a loop started and stopped at once never ended
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval_s):
                    await self._wake.wait()
            self._wake.clear()
            await self.once()

    async def once(self) -> None:
        try:
            await self._step()
        except ModelportError as exc:
            if not self._failing:
                self._log.warning("%s failed (%s); will retry", self._what, exc)
            self._failing = True
        except Exception:
            self._log.exception("%s failed; will retry", self._what)
        else:
            if self._failing:
                self._log.info("%s works again", self._what)
            self._failing = False
