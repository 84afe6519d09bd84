"""Prometheus metrics of the data plane, on a registry injected per app (tests get fresh ones)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from modelport.inference.context import InferenceContext, Transport
from modelport.inference.observers import Outcome

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "modelport_requests",
            "Inference and API requests answered.",
            ["model", "version", "protocol", "status", "deployment", "slot"],
            registry=registry,
        )
        self.latency = Histogram(
            "modelport_request_duration_seconds",
            "Time from request to response.",
            ["model", "protocol", "deployment", "slot"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "modelport_request_errors",
            "Requests answered with a 4xx or 5xx status.",
            ["model", "version", "protocol", "status", "deployment", "slot"],
            registry=registry,
        )
        self.model_loaded = Gauge(
            "modelport_model_loaded_version",
            "Version currently serving each model.",
            ["model"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.load_failures = Counter(
            "modelport_model_load_failures",
            "Versions that failed to load or warm up.",
            ["model", "version"],
            registry=registry,
        )
        self.batch_rows = Histogram(
            "modelport_batch_rows",
            "Rows per merged model call.",
            ["model", "version"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
            registry=registry,
        )
        self.queue_wait = Histogram(
            "modelport_queue_wait_seconds",
            "Time a request waited for its batch to start.",
            ["model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_releases = Counter(
            "modelport_batch_releases",
            "Why each batch was released: full, timer or idle.",
            ["model", "version", "reason"],
            registry=registry,
        )
        self.cache = Counter(
            "modelport_cache_requests",
            "Response cache lookups by result (hit or miss).",
            ["model", "result"],
            registry=registry,
        )
        self.rows = Counter(
            "modelport_predicted_rows",
            "Rows passed to models.",
            ["model", "version"],
            registry=registry,
        )
        self.observer_drops = Counter(
            "modelport_observer_dropped",
            "Outcomes an observer's full queue had to drop.",
            ["observer"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "modelport_requests_in_flight",
            "Inference requests being answered now.",
            ["protocol"],
            registry=registry,
            multiprocess_mode="livesum",
        )


class RequestMetrics:
    """Counts and times every request by model, version, protocol and status, and for a
    deployment by its name and the slot that answered (empty labels otherwise).

    An observer for inference outcomes; transports also call :meth:`record` for requests
    that never reached the service (an unknown path, a body over the limit, the API).
    """

    def __init__(self, metrics: ServingMetrics) -> None:
        self._metrics = metrics
        # labels() costs microseconds per call; the set of label values is small and fixed
        self._children: dict[_Key, _Children] = {}
        # the same children by the context's own fields: no label text is made per request
        self._by_context: dict[_ContextKey, _Children] = {}

    def observe(self, outcome: Outcome) -> None:
        self._record_context(outcome.context, outcome.status, outcome.elapsed_s)

    def answered(self, ctx: InferenceContext, status: int) -> None:
        """A transport's answer to a request the service never reported (a 405, a 413, a
        version segment that is not a number, an API call)."""
        if not ctx.reported:
            self._record_context(ctx, status, time.perf_counter() - ctx.started)

    def _record_context(self, ctx: InferenceContext, status: int, elapsed_s: float) -> None:
        key = (ctx.model, ctx.version, ctx.transport, status, ctx.deployment, ctx.slot)
        children = self._by_context.get(key)
        if children is None:
            children = self._by_context[key] = self._children_of(_labels(ctx, status))
        children.count(elapsed_s)

    def record(
        self,
        model: str,
        version: str,
        protocol: str,
        status: int,
        elapsed_s: float,
        deployment: str = "",
        slot: str = "",
    ) -> None:
        self._children_of((model, version, protocol, status, deployment, slot)).count(elapsed_s)

    def _children_of(self, key: _Key) -> _Children:
        return self._children.get(key) or self._new_children(key)

    def _new_children(self, key: _Key) -> _Children:
        model, version, protocol, status, deployment, slot = key
        labels = (model, version, protocol, str(status), deployment, slot)
        metrics = self._metrics
        children = _Children(
            metrics.requests.labels(*labels),
            metrics.latency.labels(model, protocol, deployment, slot),
            metrics.errors.labels(*labels) if status >= 400 else None,
        )
        self._children[key] = children
        return children


_Key = tuple[str, str, str, int, str, str]
"""(model, version, protocol, status, deployment, slot)"""
_ContextKey = tuple[str | None, int | None, Transport, int, str | None, str | None]


def _labels(ctx: InferenceContext, status: int) -> _Key:
    model = ctx.model or ("api" if ctx.transport is Transport.API else "-")
    version = "-" if ctx.version is None else str(ctx.version)
    if ctx.deployment is None:
        return (model, version, ctx.transport.value, status, "", "")
    return (model, version, ctx.transport.value, status, ctx.deployment, ctx.slot or "")


class _Children:
    __slots__ = ("errors", "latency", "requests")

    def __init__(self, requests: Counter, latency: Histogram, errors: Counter | None) -> None:
        self.requests = requests
        self.latency = latency
        self.errors = errors

    def count(self, elapsed_s: float) -> None:
        self.requests.inc()
        self.latency.observe(elapsed_s)
        if self.errors is not None:
            self.errors.inc()
