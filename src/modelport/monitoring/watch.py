"""A check of every served version, repeated on a schedule by one process at a time.

Drift and quality each read a window of the log per version: work every worker and replica
could do, and none should do twice. The process holding the watch's lease (renewed every
interval, lost after three missed ones) runs ``check(model, version)`` in a thread for each
version served; the others wait their turn. A graceful stop hands the lease on at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import timedelta

from modelport.errors import ModelportError
from modelport.inference.background import Repeated
from modelport.store.leases import Leases

log = logging.getLogger("modelport.monitoring")

Served = Callable[[], Iterable[tuple[str, int]]]
Check = Callable[[str, int], None]


class Watch:
    def __init__(
        self, name: str, interval_s: float, served: Served, leases: Leases, check: Check
    ) -> None:
        """``name``: the lease's and the task's (``drift``, ``quality``)."""
        self._name = name
        self._interval_s = interval_s
        self._served = served
        self._leases = leases
        self._check = check
        self._repeated = Repeated(f"checking {name}", self._step, log)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(
            self._repeated.forever(self._interval_s), name=f"{self._name}-watch"
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await asyncio.to_thread(self._leases.release, self._name)
        except ModelportError as exc:  # the database is down: the lease simply expires
            log.warning("%s watch: lease not released (%s)", self._name, exc)

    async def _step(self) -> None:
        ttl = timedelta(seconds=3 * self._interval_s)
        if not await asyncio.to_thread(self._leases.hold, self._name, ttl):
            return
        for model, version in sorted(set(self._served())):
            await asyncio.to_thread(self._check, model, version)
