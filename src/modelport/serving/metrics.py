"""Prometheus metrics of one server, on a registry injected per app (tests get fresh ones)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelport.serving.problems import Protocol, protocol_of

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0)


class ServingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "modelport_requests", "Inference and API requests answered.",
            ["model", "version", "protocol", "status"], registry=registry)
        self.latency = Histogram(
            "modelport_request_duration_seconds", "Time from request to response.",
            ["model", "protocol"], buckets=LATENCY_BUCKETS, registry=registry)
        self.errors = Counter(
            "modelport_request_errors", "Requests answered with a 4xx or 5xx status.",
            ["model", "version", "protocol", "status"], registry=registry)
        self.model_loaded = Gauge(
            "modelport_model_loaded_version", "Version currently serving each model.",
            ["model"], registry=registry, multiprocess_mode="max")
        self.load_failures = Counter(
            "modelport_model_load_failures", "Versions that failed to load or warm up.",
            ["model", "version"], registry=registry)
        self.batch_rows = Histogram(
            "modelport_batch_rows", "Rows per merged model call.", ["model", "version"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096), registry=registry)
        self.queue_wait = Histogram(
            "modelport_queue_wait_seconds", "Time a request waited for its batch to start.",
            ["model", "version"], buckets=LATENCY_BUCKETS, registry=registry)
        self.batch_releases = Counter(
            "modelport_batch_releases", "Why each batch was released: full, timer or idle.",
            ["model", "version", "reason"], registry=registry)
        self.cache = Counter(
            "modelport_cache_requests", "Response cache lookups by result (hit or miss).",
            ["model", "result"], registry=registry)
        self.rows = Counter(
            "modelport_predicted_rows", "Rows passed to models.", ["model", "version"],
            registry=registry)


class MetricsMiddleware:
    """Counts every request by model, version, protocol and status, and times it.

    Routes name the model they served in ``scope["state"]``; requests that never reached a
    model (bad path, bad body) count under the name in the URL or ``-``.
    """

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics
        # labels() costs microseconds per call; the set of label values is small and fixed
        self._children: dict[tuple[str, str, str, int], _Children] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        state: dict[str, Any] = scope.get("state", {})
        protocol = protocol_of(scope["path"])
        model = str(state.get("model", "-"))
        version = str(state.get("version", "-"))
        if protocol is Protocol.API and model == "-":
            model = "api"
        key = (model, version, protocol.value, status)
        children = self._children.get(key) or self._new_children(key)
        children.requests.inc()
        children.latency.observe(elapsed)
        if children.errors is not None:
            children.errors.inc()

    def _new_children(self, key: tuple[str, str, str, int]) -> _Children:
        model, version, protocol, status = key
        labels = (model, version, protocol, str(status))
        children = _Children(self.metrics.requests.labels(*labels),
                             self.metrics.latency.labels(model, protocol),
                             self.metrics.errors.labels(*labels) if status >= 400 else None)
        self._children[key] = children
        return children


@dataclass(frozen=True, slots=True)
class _Children:
    requests: Any
    latency: Any
    errors: Any | None
