"""The threads that run model code, off the event loop, shared by every loaded version."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from threadpoolctl import ThreadpoolController

from modelport.runtimes.base import Runtime, call_model
from modelport.runtimes.batch import Batch, Outputs

T = TypeVar("T")


class ModelExecutor:
    """Threads that run model code, each pinned to ``model_threads`` BLAS/OpenMP threads.

    ``slots`` is the one budget of model calls in flight for the whole process: every
    version's batcher takes a slot before it hands a batch over, so two loaded versions never
    queue more calls than there are threads. Pinning is per thread and only reaches
    libraries already loaded, so it is re-applied lazily after every model load
    (``generation``) instead of once at thread start. The loaded libraries are looked up
    once per generation (a scan of the process's libraries, ~15 ms), not once per thread.
    """

    def __init__(self, workers: int, model_threads: int) -> None:
        self.workers = workers
        self.slots = asyncio.Semaphore(workers)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="modelport-model")
        self._model_threads = model_threads
        self._local = threading.local()
        self.generation = 0
        self._libraries: tuple[int, ThreadpoolController] | None = None
        self._scanning = threading.Lock()

    async def run(self, fn: Callable[[], T], *, inline: bool = False) -> T:
        """``fn`` in a model thread, or with ``inline`` on the calling thread (the event
        loop), pinned like a model thread either way."""
        if inline:
            return self._pinned(fn)
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._pinned, fn)

    def _pinned(self, fn: Callable[[], T]) -> T:
        generation = self.generation
        if getattr(self._local, "generation", -1) != generation:
            self._libraries_of(generation).limit(limits=self._model_threads)
            self._local.generation = generation
        return fn()

    def _libraries_of(self, generation: int) -> ThreadpoolController:
        with self._scanning:
            if self._libraries is None or self._libraries[0] != generation:
                self._libraries = (generation, ThreadpoolController())
            return self._libraries[1]

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)

    async def predict(self, runtime: Runtime, batch: Batch) -> Outputs:
        return await self.run(lambda: call_model(runtime, batch))
