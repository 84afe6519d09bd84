"""Adaptive batching: concurrent requests for one version merged into one ``predict`` call.

Requests queue per loaded version; a dispatcher task drains the queue. Because it runs after
every request that became ready in the same event-loop pass, the requests of one burst leave
together (up to ``max_batch_size`` rows) and a lone request on an idle server leaves alone at
once. A call the model is known to answer within ``inline_max_ms`` (timed per batch size)
runs right on the event loop; any other call waits for a free model slot (the executor's
threads, shared by every loaded version) while more requests join it. ``max_wait_ms`` only
applies when a batch is already forming (more than one request queued): it lets the batch
wait that long for more rows. A batch that fills a call by itself (a piece of a batch job)
arriving at an empty queue skips the queue when the model is fast enough to run inline: the
dispatcher could only hand it on unchanged. Rows are split back so every request gets exactly
its own, in order. If a merged call fails, each request is retried alone, so one bad request
cannot fail its neighbours. The queue is bounded in rows; past it, requests get a 503 with
``Retry-After`` instead of unbounded latency.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

import numpy as np

from modelport.config import ModelOptions, Settings
from modelport.errors import ModelError, ModelportError, QueueFullError
from modelport.inference.call_times import CallTimes
from modelport.inference.executor import ModelExecutor
from modelport.inference.metrics import ServingMetrics
from modelport.runtimes.base import Runtime, call_model
from modelport.runtimes.batch import Batch, Outputs

T = TypeVar("T")
log = logging.getLogger("modelport.inference")


class Release(StrEnum):
    """Why a batch left the queue: it reached the size limit, its wait ran out, or no
    batch was forming."""

    FULL = "full"
    TIMER = "timer"
    IDLE = "idle"


@dataclass(frozen=True, slots=True)
class BatchingOptions:
    max_batch_size: int
    max_wait_ms: float
    max_queue_rows: int
    inline_max_ms: float = 0.0

    @classmethod
    def for_model(cls, settings: Settings, name: str) -> BatchingOptions:
        """Server-wide settings, overridden by the model's own ``model_options`` entry."""
        own = settings.model_options.get(name, ModelOptions())
        return cls(
            _pick(own.batch_max_size, settings.batch_max_size),
            _pick(own.batch_max_wait_ms, settings.batch_max_wait_ms),
            _pick(own.queue_max_rows, settings.queue_max_rows),
            _pick(own.inline_max_ms, settings.inline_max_ms),
        )


def _pick(own: T | None, default: T) -> T:
    return default if own is None else own


@dataclass(slots=True)
class _Pending:
    batch: Batch
    future: asyncio.Future[Outputs]
    enqueued: float = field(default_factory=time.perf_counter)


class Batcher:
    """Owns a runtime's queue; callers ``await predict(batch)``, nobody patches the runtime."""

    def __init__(
        self,
        runtime: Runtime,
        executor: ModelExecutor,
        options: BatchingOptions,
        metrics: ServingMetrics,
        model: str,
        version: int,
    ) -> None:
        self._runtime = runtime
        self._executor = executor
        self._options = options
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._arrived = asyncio.Event()
        self._slots = executor.slots
        self._dispatcher: asyncio.Task[None] | None = None
        self._closing = False
        labels = (model, str(version))
        self._batch_rows = metrics.batch_rows.labels(*labels)
        self._queue_wait = metrics.queue_wait.labels(*labels)
        self._releases = {r: metrics.batch_releases.labels(*labels, r.value) for r in Release}
        self._rows = metrics.rows.labels(*labels)
        self._call_times = CallTimes()

    async def predict(self, batch: Batch) -> Outputs:
        if self._queued_rows + batch.n_rows > self._options.max_queue_rows:
            raise QueueFullError(
                f"the queue of this model holds {self._queued_rows} rows "
                f"(limit {self._options.max_queue_rows}); retry shortly"
            )
        fills_a_call = batch.n_rows >= self._options.max_batch_size
        if fills_a_call and not self._queue and self._fast_enough(batch.n_rows):
            return await self._alone_inline(batch)
        pending = _Pending(batch, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        self._queued_rows += batch.n_rows
        self._arrived.set()
        if self._dispatcher is None or self._dispatcher.done():
            # done: closed after a swap, yet a request that picked this version just before
            # the swap still arrives; it must be answered, not left waiting
            self._dispatcher = asyncio.create_task(self._dispatch_forever())
        return await pending.future

    async def _alone_inline(self, batch: Batch) -> Outputs:
        """A batch that fills a call by itself (a piece of a job or a batch run) while nothing
        waits, for a model fast enough to answer it on the loop: called at once, since the
        queue and dispatcher could only hand it on unchanged, at a cost near the model's own
        for a small model. The loop is given up after it, as the dispatcher does."""
        self._queue_wait.observe(0.0)
        self._observe(Release.FULL, batch.n_rows)
        outputs = await self._executor.run(lambda: self._timed_call(batch), inline=True)
        await asyncio.sleep(0)
        return outputs

    def _runs_inline(self) -> bool:
        """The batch about to leave is one this model is known to answer faster than
        ``inline_max_ms``: cheaper on the event loop than handed to a model thread. Its
        first request leaves whole, even past ``max_batch_size`` (a shadow's merged copies):
        2,048 rows of a 100-tree model would hold the loop for milliseconds."""
        limit = self._options.max_batch_size
        rows = limit if self._options.max_wait_ms > 0 else min(self._queued_rows, limit)
        return self._fast_enough(max(rows, self._queue[0].batch.n_rows))

    def _fast_enough(self, rows: int) -> bool:
        if self._options.inline_max_ms <= 0:
            return False
        estimate = self._call_times.estimate(rows)
        return estimate is not None and estimate * 1000 < self._options.inline_max_ms

    def _timed_call(self, batch: Batch) -> Outputs:
        started = time.perf_counter()
        outputs = call_model(self._runtime, batch)
        self._call_times.record(batch.n_rows, time.perf_counter() - started)
        return outputs

    def _observe(self, release: Release, rows: int) -> None:
        self._releases[release].inc()
        self._batch_rows.observe(rows)
        self._rows.inc(rows)

    def close(self) -> None:
        """Stop once the queue is empty: requests already queued are still answered."""
        self._closing = True
        self._arrived.set()

    async def _dispatch_forever(self) -> None:
        """Runs after every request that became ready in the same loop pass has queued, so
        those leave together: as one call on the loop when the model is fast enough, else
        in a model thread once one is free (more requests join while it waits)."""
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._arrived.clear()
                await self._arrived.wait()
                continue
            if self._runs_inline():
                taken, release = await self._take()
                await self._execute(taken, release, inline=True)
                await asyncio.sleep(0)  # let the answered requests reply before the next call
                continue
            await self._slots.acquire()
            taken, release = await self._take()
            task = asyncio.create_task(self._execute(taken, release, inline=False))
            task.add_done_callback(lambda _t: self._slots.release())

    async def _take(self) -> tuple[list[_Pending], Release]:
        limit = self._options.max_batch_size
        taken, rows = self._pop(limit, [], 0)
        forming = len(taken) > 1 or bool(self._queue)
        if rows >= limit:
            return taken, Release.FULL
        if not forming or self._options.max_wait_ms <= 0:
            return taken, Release.IDLE
        deadline = taken[0].enqueued + self._options.max_wait_ms / 1000
        while rows < limit and (remaining := deadline - time.perf_counter()) > 0:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                break
            taken, rows = self._pop(limit, taken, rows)
        return taken, Release.FULL if rows >= limit else Release.TIMER

    def _pop(self, limit: int, taken: list[_Pending], rows: int) -> tuple[list[_Pending], int]:
        """Move queued requests into ``taken`` while they fit (the first one always does)."""
        while self._queue and (not taken or rows + self._queue[0].batch.n_rows <= limit):
            pending = self._queue.popleft()
            self._queued_rows -= pending.batch.n_rows
            taken.append(pending)
            rows += pending.batch.n_rows
        return taken, rows

    async def _execute(self, taken: list[_Pending], release: Release, *, inline: bool) -> None:
        try:
            await self._execute_merged(taken, release, inline)
        except Exception as exc:  # never leave a client waiting on a future nobody settles
            log.exception("batch of %d requests failed", len(taken))
            for pending in taken:
                _settle(pending, ModelError(f"the batch failed: {type(exc).__name__}"))

    async def _execute_merged(self, taken: list[_Pending], release: Release, inline: bool) -> None:
        now = time.perf_counter()
        for pending in taken:
            self._queue_wait.observe(now - pending.enqueued)
        merged = merge([p.batch for p in taken])
        self._observe(release, merged.n_rows)
        try:
            outputs = await self._executor.run(lambda: self._timed_call(merged), inline=inline)
        except ModelportError as exc:
            if len(taken) == 1:
                _settle(taken[0], exc)
                return
            await self._retry_alone(taken)
            return
        start = 0
        for pending in taken:
            stop = start + pending.batch.n_rows
            _settle(pending, {name: array[start:stop] for name, array in outputs.items()})
            start = stop

    async def _retry_alone(self, taken: list[_Pending]) -> None:
        """One request broke the merged call: find out which, answer the others."""
        for pending in taken:
            try:
                _settle(pending, await self._executor.predict(self._runtime, pending.batch))
            except ModelportError as exc:
                _settle(pending, exc)


def merge(batches: list[Batch]) -> Batch:
    if len(batches) == 1:
        return batches[0]
    names = batches[0].columns.keys()
    columns = {name: np.concatenate([b.columns[name] for b in batches]) for name in names}
    return Batch(columns, sum(b.n_rows for b in batches))


def _settle(pending: _Pending, result: Outputs | ModelportError) -> None:
    if pending.future.done():  # the client went away; nobody is waiting for this answer
        return
    if isinstance(result, ModelportError):
        pending.future.set_exception(result)
    else:
        pending.future.set_result(result)
