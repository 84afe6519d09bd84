"""Observers: what happens after every inference outcome, kept off the request's path.

The service calls each observer once per request with an :class:`Outcome` (success, model
error, invalid input or cache hit alike). An observer must return at once: cheap in-memory
work (counting metrics) runs inline; anything that does I/O (a prediction log, drift, a
shadow comparison) is wrapped in :class:`QueuedObserver`, whose bounded queue is drained by a
task the app's lifespan owns. A full queue drops the outcome and counts it; a request never
waits for an observer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, runtime_checkable

from prometheus_client import Counter

from modelport.errors import ModelportError
from modelport.inference.context import InferenceContext
from modelport.runtimes.batch import Batch, Outputs

log = logging.getLogger("modelport.inference")


@dataclass(frozen=True, slots=True)
class Outcome:
    """One answered request: its context, what went in, what came out or what went wrong."""

    context: InferenceContext
    inputs: Batch | None
    outputs: Outputs | None
    error: ModelportError | None
    elapsed_s: float
    """From the context's start (the request's arrival) to the answer."""
    shadow: bool = False
    """A shadow slot's answer to a mirrored copy: never seen by the client."""

    @property
    def status(self) -> int:
        return 200 if self.error is None else self.error.status


class Observer(Protocol):
    def observe(self, outcome: Outcome) -> None:
        """Called on the event loop for every outcome; must not block."""
        ...


@runtime_checkable
class LifecycleObserver(Observer, Protocol):
    """An observer with a background part started and stopped with the server."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


T = TypeVar("T")
Sink = Callable[[list[T]], Awaitable[None]]


class QueuedObserver(Generic[T]):
    """Hands items (outcomes, or what an observer makes of them) to an async ``sink`` in
    batches, from a bounded queue.

    On stop, what is queued is flushed before the task ends, so a graceful shutdown loses
    nothing; a crash loses at most ``max_queued`` items: the batch being handed over counts
    against it until the sink returns.
    """

    def __init__(
        self,
        name: str,
        sink: Sink[T],
        dropped: Counter,
        *,
        max_queued: int = 10_000,
        max_batch: int = 500,
        linger_s: float = 0.0,
    ) -> None:
        """``linger_s``: once something is queued, wait this long for more before handing a
        batch over (for sinks whose every call has a fixed cost, such as a model call)."""
        self.name = name
        self._sink = sink
        self._queue: deque[T] = deque()
        self._max_queued = max_queued
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._dropped = dropped.labels(name)
        self._handing_over = 0
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        """Items held: queued, or in the batch the sink has not finished with."""
        return len(self._queue) + self._handing_over

    def observe(self, item: T) -> bool:
        """Queue ``item``; False when the queue was full and it was dropped."""
        if self.queued >= self._max_queued:
            self._dropped.inc()
            return False
        self._queue.append(item)
        self._ready.set()
        return True

    async def start(self) -> None:
        self._task = asyncio.create_task(self._drain(), name=f"observer-{self.name}")

    async def stop(self) -> None:
        self._stopping.set()
        self._ready.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _drain(self) -> None:
        while True:
            if not self._queue:
                if self._stopping.is_set():
                    return
                self._ready.clear()
                await self._ready.wait()
                continue
            if self._linger_s and len(self._queue) < self._max_batch:
                with contextlib.suppress(TimeoutError):  # a stop cuts the lingering short
                    await asyncio.wait_for(self._stopping.wait(), self._linger_s)
            taken = [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
            self._handing_over = len(taken)
            try:
                await self._sink(taken)
            except Exception:  # one failing write must not stop the observer
                log.exception("observer %s failed on %d outcomes", self.name, len(taken))
            finally:
                self._handing_over = 0


def notify(observers: Sequence[Observer], outcome: Outcome) -> None:
    """Give ``outcome`` to every observer; one that raises is logged, the others still run."""
    for observer in observers:
        try:
            observer.observe(outcome)
        except Exception:
            log.exception("observer %s failed", type(observer).__name__)
