"""The model pool: every loaded version of the process, keyed by (name, version).

Several versions of one model may be loaded at once (the old one finishing its requests while
the new one takes traffic; later, a canary beside its primary). Routes ``acquire`` a version
and ``release`` it; the pool loads on first use and unloads when the last user is gone, once
the version's queue has drained. Loading is fetch → verify (SHA-256 of every file) → load →
warm (the stored input example, run on the same pinned model threads as traffic) → ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from modelport.errors import ArtifactError, ConfigurationError
from modelport.inference.batching import Batcher, BatchingOptions
from modelport.inference.executor import ModelExecutor
from modelport.inference.metrics import ServingMetrics
from modelport.registry import Registry, VersionRecord, warm_up
from modelport.runtimes.base import Runtime, close_runtime

log = logging.getLogger("modelport.inference")

VersionKey = tuple[str, int]


@dataclass(slots=True)
class LoadedVersion:
    """A loaded, warmed version with its own request queue, and how many routes use it."""

    record: VersionRecord
    runtime: Runtime
    batcher: Batcher
    users: int = 0
    in_flight: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def key(self) -> VersionKey:
        return (self.record.name, self.record.version)

    def serving(self) -> LoadedVersion:
        """``with version.serving():`` marks a request using this version, from routing to
        answer; unloading waits. (A plain context manager: a generator-based one cost more
        than the rest of the bookkeeping of a request.)"""
        return self

    def __enter__(self) -> None:
        self.in_flight += 1
        self.idle.clear()

    def __exit__(self, *exc_info: object) -> None:
        self.in_flight -= 1
        if not self.in_flight:
            self.idle.set()


def is_permanent(exc: BaseException) -> bool:
    """A failure that retrying the same version cannot cure (bad hash, untrusted, load error).

    Anything else (database or object store unreachable, a timeout) is worth another try.
    """
    return isinstance(exc, ArtifactError | ConfigurationError)


class ModelPool:
    def __init__(
        self,
        registry: Registry,
        executor: ModelExecutor,
        metrics: ServingMetrics,
        batching: Callable[[str], BatchingOptions],
    ) -> None:
        self._registry = registry
        self._executor = executor
        self._metrics = metrics
        self._batching = batching
        self._loaded: dict[VersionKey, LoadedVersion] = {}
        self._loading: dict[VersionKey, asyncio.Task[None]] = {}
        self._unloading: set[asyncio.Task[None]] = set()

    def loaded(self) -> list[LoadedVersion]:
        return list(self._loaded.values())

    async def acquire(self, record: VersionRecord, warmup: int = 1) -> LoadedVersion:
        """The loaded version, loading it first (with ``warmup`` calls on its input example)
        if needed; concurrent callers share one load."""
        key = (record.name, record.version)
        if key not in self._loaded:
            task = self._loading.get(key)
            if task is None:
                task = asyncio.create_task(self._load(record, warmup))
                self._loading[key] = task
                task.add_done_callback(lambda _t: self._loading.pop(key, None))
            await asyncio.shield(task)
        loaded = self._loaded[key]
        loaded.users += 1
        return loaded

    def release(self, loaded: LoadedVersion) -> None:
        """One user fewer; the last one out unloads the version once its queue is empty."""
        loaded.users -= 1
        if loaded.users <= 0 and self._loaded.get(loaded.key) is loaded:
            self._retire(loaded)

    async def close(self) -> None:
        """Unload everything (server shutdown), after in-flight requests are answered."""
        for loaded in list(self._loaded.values()):
            self._retire(loaded)
        for task in list(self._loading.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._unloading:
            await asyncio.gather(*self._unloading, return_exceptions=True)

    def _retire(self, loaded: LoadedVersion) -> None:
        del self._loaded[loaded.key]
        loaded.batcher.close()  # requests already queued for it are still answered
        task = asyncio.create_task(self._unload(loaded))
        self._unloading.add(task)
        task.add_done_callback(self._unloading.discard)

    async def _load(self, record: VersionRecord, warmup: int) -> None:
        log.info("loading %s", record.address)
        try:
            runtime, example = await asyncio.to_thread(self._registry.open, record)
            self._executor.generation += 1  # pin BLAS/OpenMP threads of what just loaded
            if example is not None and warmup > 0:
                try:
                    for _ in range(warmup):
                        await self._executor.run(lambda: warm_up(record, runtime, example))
                except BaseException:
                    await asyncio.to_thread(close_runtime, runtime)
                    raise
        except Exception:
            self._metrics.load_failures.labels(record.name, str(record.version)).inc()
            raise
        batcher = Batcher(
            runtime,
            self._executor,
            self._batching(record.name),
            self._metrics,
            record.name,
            record.version,
        )
        self._loaded[(record.name, record.version)] = LoadedVersion(record, runtime, batcher)
        # Everything loaded so far (libraries, the model) lives as long as the process; a full
        # collection walking it stalled requests for ~100 ms (p99). Frozen objects are skipped.
        gc.freeze()

    async def _unload(self, loaded: LoadedVersion) -> None:
        if loaded.in_flight:
            await loaded.idle.wait()
        try:
            await asyncio.to_thread(close_runtime, loaded.runtime)
        except Exception:
            log.exception("closing %s failed", loaded.record.address)
        log.info("unloaded %s", loaded.record.address)
