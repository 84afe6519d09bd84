"""The models a server hosts: loaded, warmed, hot-swapped when their alias moves.

Each served model follows an address (``iris@production``, ``iris/3`` or ``iris`` for the
latest). A watcher polls the registry; when the address resolves to a new version, that
version is loaded and warmed off the event loop and then swapped in with one reference
assignment, so requests in flight finish on the version they started with. A version that
fails to load never takes traffic: the old one keeps serving and the failure is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from modelport.errors import (
    ModelNotFoundError,
    ModelNotReadyError,
    ModelportError,
    ModelVersionNotFoundError,
)
from modelport.registry import ModelAddress, Registry, VersionRecord
from modelport.runtimes.base import Runtime
from modelport.runtimes.batch import Batch, Outputs
from modelport.serving.batching import Batcher, BatchingOptions
from modelport.serving.cache import ResponseCache, cache_key
from modelport.serving.executor import ModelExecutor
from modelport.serving.metrics import ServingMetrics

log = logging.getLogger("modelport.serving")


@dataclass(frozen=True, slots=True)
class Deployed:
    """A loaded, warmed version, ready for traffic, with its own request queue."""

    record: VersionRecord
    runtime: Runtime
    batcher: Batcher


class ModelState(StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class ServedModel:
    """One model name the server answers for."""

    def __init__(self, address: ModelAddress) -> None:
        self.address = address
        self.current: Deployed | None = None
        self.last_error: str | None = None
        self.failed_version: int | None = None

    @property
    def name(self) -> str:
        return self.address.name

    @property
    def state(self) -> ModelState:
        if self.current is not None:
            return ModelState.READY
        return ModelState.FAILED if self.last_error else ModelState.LOADING

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "address": str(self.address), "state": self.state.value,
                "version": self.current.record.version if self.current else None,
                "last_error": self.last_error, "failed_version": self.failed_version}


class ModelHost:
    def __init__(self, registry: Registry, addresses: list[ModelAddress],
                 metrics: ServingMetrics, executor: ModelExecutor,
                 batching: Mapping[str, BatchingOptions], cache: ResponseCache,
                 cached_models: frozenset[str] = frozenset(),
                 default_model: str | None = None) -> None:
        names = [a.name for a in addresses]
        if len(set(names)) != len(names):
            raise ModelportError(f"each model can be served once; got {', '.join(names)}")
        self.registry = registry
        self.models = {a.name: ServedModel(a) for a in addresses}
        self.metrics = metrics
        self.executor = executor
        self.batching = batching
        self.cache = cache
        self.cached_models = cached_models
        self.default_model = default_model
        self._wake = asyncio.Event()

    # -- lookup on the hot path ---------------------------------------------------------

    def served(self, name: str) -> ServedModel:
        """The served model behind a URL name: ``iris``, or ``iris@alias`` / ``iris/3``."""
        model = self.models.get(name)
        if model is None and ("@" in name or "/" in name):
            address = ModelAddress.parse(name)
            candidate = self.models.get(address.name)
            if candidate is not None and (address.alias is None
                                          or candidate.address.alias == address.alias):
                model = candidate
        if model is None:
            raise ModelNotFoundError(f"model {name!r} is not served here "
                                     f"(served: {', '.join(self.models) or 'none'})")
        return model

    def get(self, name: str, version: int | None = None) -> Deployed:
        """The deployed version for a request, or a 404 / 503 that says why not."""
        model = self.served(name)
        if name != model.name and "/" in name:
            version = ModelAddress.parse(name).version
        deployed = model.current
        if deployed is None:
            reason = f": {model.last_error}" if model.last_error else " yet"
            raise ModelNotReadyError(f"model {model.name!r} is not loaded{reason}")
        if version is not None and version != deployed.record.version:
            raise ModelVersionNotFoundError(
                f"model {model.name!r} serves version {deployed.record.version}, "
                f"not version {version}")
        return deployed

    def default(self) -> ServedModel:
        """The model answering un-named routes such as MLflow's ``/invocations``."""
        if self.default_model is not None:
            return self.served(self.default_model)
        if len(self.models) == 1:
            return next(iter(self.models.values()))
        raise ModelNotFoundError("several models are served and none is the default; "
                                 "start the server with --default-model NAME")

    def ready(self) -> bool:
        return all(m.current is not None for m in self.models.values())

    async def predict(self, deployed: Deployed, batch: Batch) -> Outputs:
        record = deployed.record
        key = cache_key(record, batch) if record.name in self.cached_models else None
        if key is not None:
            hit = await self.cache.get(key)
            self.metrics.cache.labels(record.name, "miss" if hit is None else "hit").inc()
            if hit is not None:
                return hit
        outputs = await deployed.batcher.predict(batch)
        if key is not None:
            await self.cache.put(key, outputs)
        return outputs

    # -- loading and hot reload ---------------------------------------------------------

    def wake(self) -> None:
        """Check the registry now instead of at the next poll (e.g. after an API alias move)."""
        self._wake.set()

    async def watch(self, interval_s: float) -> None:
        """Follow the registry until cancelled; the first load happens at start-up."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=interval_s)
            self._wake.clear()
            await self.refresh_logged()

    async def refresh_logged(self) -> None:
        try:
            await self.refresh()
        except Exception:  # the watcher must outlive any one bad poll (e.g. DB restart)
            log.exception("checking the registry for model changes failed; will retry")

    async def refresh(self) -> None:
        for model in self.models.values():
            try:
                record = await asyncio.to_thread(self.registry.resolve, model.address)
            except ModelportError as exc:
                self._failed(model, None, f"cannot resolve {model.address}: {exc.detail}")
                continue
            current = model.current.record.version if model.current else None
            if record.version in (current, model.failed_version):
                continue
            await self._load(model, record)

    async def _load(self, model: ServedModel, record: VersionRecord) -> None:
        log.info("loading %s for %s", record.address, model.address)
        try:
            runtime = await asyncio.to_thread(self.registry.load, record)
        except ModelportError as exc:
            self.metrics.load_failures.labels(record.name, str(record.version)).inc()
            self._failed(model, record.version, f"{record.address} failed to load: {exc.detail}")
            return
        self.executor.generation += 1
        previous = model.current
        batcher = Batcher(runtime, self.executor, self.batching[model.name], self.metrics,
                          record.name, record.version)
        model.current = Deployed(record, runtime, batcher)
        if previous is not None:
            previous.batcher.close()  # requests already queued for it are still answered
        model.last_error, model.failed_version = None, None
        self.metrics.model_loaded.labels(model.name).set(record.version)
        # Everything loaded so far (libraries, the model) lives as long as the process; a full
        # collection walking it stalled requests for ~100 ms (p99). Frozen objects are skipped.
        gc.freeze()
        if previous is None:
            log.info("%s serving %s", model.address, record.address)
        else:
            log.info("%s switched from %s to %s", model.address, previous.record.address,
                     record.address)

    def _failed(self, model: ServedModel, version: int | None, message: str) -> None:
        if model.last_error != message:
            keeps = (f"; still serving {model.current.record.address}"
                     if model.current else "")
            log.error("%s%s", message, keeps)
        model.last_error, model.failed_version = message, version
