"""The threads that run model code, off the event loop, shared by every loaded version."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from threadpoolctl import threadpool_limits

from modelport.runtimes.base import Runtime, call_model
from modelport.runtimes.batch import Batch, Outputs

T = TypeVar("T")


class ModelExecutor:
    """Threads that run model code, each pinned to ``model_threads`` BLAS/OpenMP threads.

    ``slots`` is the one budget of model calls in flight for the whole process: every
    version's batcher takes a slot before it hands a batch over, so two loaded versions never
    queue more calls than there are threads. Pinning is per thread and only reaches
    libraries already loaded, so it is re-applied lazily after every model load
    (``generation``) instead of once at thread start.
    """

    def __init__(self, workers: int, model_threads: int) -> None:
        self.workers = workers
        self.slots = asyncio.Semaphore(workers)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="modelport-model")
        self._model_threads = model_threads
        self._local = threading.local()
        self.generation = 0

    async def run(self, fn: Callable[[], T], *, inline: bool = False) -> T:
        """``fn`` in a model thread, or with ``inline`` on the calling thread (the event
        loop), pinned like a model thread either way."""
        if inline:
            return self._pinned(fn)
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._pinned, fn)

    def _pinned(self, fn: Callable[[], T]) -> T:
        if getattr(self._local, "generation", -1) != self.generation:
            threadpool_limits(self._model_threads)
            self._local.generation = self.generation
        return fn()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)

    async def predict(self, runtime: Runtime, batch: Batch) -> Outputs:
        return await self.run(lambda: call_model(runtime, batch))
