"""What a serving process runs for experiments: the exposure observer (started with the
inference service, like every queued observer) and the controller (which competes for its
lease and ramps or stops experiments)."""

from __future__ import annotations

import asyncio
import contextlib

from modelport.experiments.controller import ExperimentController
from modelport.experiments.exposures import ExposureRecorder, ExposureStore
from modelport.inference.metrics import ServingMetrics
from modelport.inference.observers import Observer
from modelport.inference.router import Router
from modelport.registry import Registry
from modelport.store.leases import Leases


class Experiments:
    def __init__(
        self,
        registry: Registry,
        router: Router,
        metrics: ServingMetrics,
        holder: str,
    ) -> None:
        exposures = ExposureStore(registry.database)
        self.recorder = ExposureRecorder(
            router, exposures, metrics.observer_drops, metrics.registry
        )
        self.controller = ExperimentController(registry, Leases(registry.database, holder))
        self._task: asyncio.Task[None] | None = None

    @property
    def observers(self) -> list[Observer]:
        return [self.recorder]

    def start(self) -> None:
        self._task = asyncio.create_task(self.controller.run(), name="experiment-controller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
