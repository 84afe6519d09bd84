"""One process's data plane, assembled from the settings: router, model pool, registry
follower, response cache, request metrics, prediction log and the inference service.

Both composition roots build it: ``serving/`` (HTTP and gRPC servers add access control,
deployments and watches around it) and ``jobs/`` (headless workers for batch files and
streams, which have no HTTP layer at all). Either way a prediction takes the same path and
reaches the same observers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from prometheus_client import CollectorRegistry

from modelport.config import Settings
from modelport.errors import ModelLoadError
from modelport.inference import InferenceService, ModelPool, RegistryFollower, Router
from modelport.inference.batching import BatchingOptions
from modelport.inference.cache import create_cache
from modelport.inference.executor import ModelExecutor
from modelport.inference.metrics import RequestMetrics, ServingMetrics
from modelport.inference.observers import Observer
from modelport.inference.service import Admission
from modelport.monitoring.prediction_log import prediction_log_of
from modelport.registry import ModelAddress, Registry
from modelport.security.secret import server_secret


class DataPlane:
    def __init__(
        self,
        settings: Settings,
        models: Sequence[str],
        *,
        registry: Registry | None = None,
        metrics_registry: CollectorRegistry | None = None,
    ) -> None:
        """``registry``: one the caller owns (and closes); otherwise the plane opens its own."""
        self._owns_registry = registry is None
        self.registry = registry or Registry.from_settings(settings)
        self.metrics = ServingMetrics(metrics_registry or CollectorRegistry())
        self.executor = ModelExecutor(settings.inference_threads, settings.model_threads)
        self.router = Router([ModelAddress.parse(m) for m in models], settings.default_model)
        self.pool = ModelPool(
            self.registry,
            self.executor,
            self.metrics,
            lambda name: BatchingOptions.for_model(settings, name),
        )
        self.follower = RegistryFollower(self.registry, self.router, self.pool, self.metrics)
        self.cache = create_cache(settings)
        self._cached = frozenset(
            name for name, options in settings.model_options.items() if options.cache
        )
        self.request_metrics = RequestMetrics(self.metrics)
        prediction_log = prediction_log_of(
            settings,
            self.registry.database,
            self.metrics.registry,
            self.metrics.observer_drops,
            lambda: server_secret(settings),
        )
        self.logged: list[Observer] = [prediction_log] if prediction_log else []
        """Observers that keep what was asked and answered (a shadow slot's answers too)."""

    def service(
        self, policies: Sequence[Observer] = (), admission: Admission | None = None
    ) -> InferenceService:
        """The service over this plane; every outcome reaches the request metrics, then
        ``policies`` (rollouts), then the prediction log."""
        observers = [self.request_metrics, *policies, *self.logged]
        return InferenceService(
            self.router, self.metrics, self.cache, self._cached, observers, admission
        )

    @asynccontextmanager
    async def started(self) -> AsyncIterator[InferenceService]:
        """For a headless worker (a batch run, a stream): every model loaded, or a
        :class:`ModelLoadError` naming what could not be; the service started until the block
        ends, then everything closed."""
        try:
            problems = await self.load()
            if problems:
                raise ModelLoadError("; ".join(problems))
            service = self.service()
            await service.start()
            try:
                yield service
            finally:
                await service.stop()
        finally:
            await self.close()

    async def load(self) -> list[str]:
        """Load every model the router names; what could not be loaded, one phrase each."""
        await self.follower.refresh_logged()
        return self.follower.problems()

    async def close(self) -> None:
        await self.pool.close()
        self.executor.shutdown()
        await self.cache.close()
        if self._owns_registry:
            self.registry.close()
