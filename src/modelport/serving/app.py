"""``create_app``: one ASGI app serving any number of models over V1, V2 and MLflow."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

import modelport
from modelport.config import Settings
from modelport.registry import ModelAddress, Registry
from modelport.serving import api, health, mlflow, routes, v1, v2
from modelport.serving.batching import BatchingOptions
from modelport.serving.cache import create_cache
from modelport.serving.context import ServingContext
from modelport.serving.executor import ModelExecutor
from modelport.serving.host import ModelHost
from modelport.serving.limits import BodyLimitMiddleware
from modelport.serving.metrics import MetricsMiddleware, ServingMetrics
from modelport.serving.problems import install_error_handlers


def app_from_environment() -> FastAPI:
    """The app of one worker process of ``modelport serve --workers N``."""
    settings = Settings()
    return create_app(settings, settings.models)


def create_app(settings: Settings, models: Sequence[str], *,
               registry: Registry | None = None,
               metrics_registry: CollectorRegistry | None = None) -> FastAPI:
    """Build the app; models load and warm up during start-up, then follow the registry."""
    owns_registry = registry is None
    registry = registry or Registry.from_settings(settings)
    metrics = ServingMetrics(metrics_registry or CollectorRegistry())
    executor = ModelExecutor(settings.inference_threads, settings.model_threads)
    addresses = [ModelAddress.parse(m) for m in models]
    batching = {a.name: BatchingOptions.for_model(settings, a.name) for a in addresses}
    cached = frozenset(name for name, options in settings.model_options.items()
                       if options.cache)
    cache = create_cache(settings)
    host = ModelHost(registry, addresses, metrics, executor, batching, cache, cached,
                     default_model=settings.default_model)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Loaded before the server accepts connections: with several workers on one port, a
        # worker still loading would otherwise take requests and answer 503.
        await host.refresh_logged()
        watcher = asyncio.create_task(host.watch(settings.reload_interval_s))
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            executor.shutdown()
            await cache.close()
            if owns_registry:
                registry.close()

    app = FastAPI(title="modelport", version=modelport.__version__, lifespan=lifespan,
                  description="Model serving over KServe V1, Open Inference Protocol V2 and "
                              "the MLflow scoring protocol, plus the registry API.")
    app.state.ctx = ServingContext(settings, registry, host, metrics)
    install_error_handlers(app)
    for module in (health, v1, v2, mlflow, api):
        app.include_router(module.router)
    routes.install(app, [v1.hot, v2.hot, mlflow.hot])
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
