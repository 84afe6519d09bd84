"""Prometheus metrics of deployments: the split actually served, and the shadow's verdict."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from modelport.inference.metrics import LATENCY_BUCKETS


class RolloutMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.weight = Gauge(
            "modelport_deployment_slot_weight_percent",
            "Share of a deployment's traffic each slot is meant to take.",
            ["deployment", "slot"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.mirrored = Counter(
            "modelport_shadow_rows",
            "Rows mirrored to a deployment's shadow and compared with the primary's answer.",
            ["deployment", "slot"],
            registry=registry,
        )
        self.disagreed = Counter(
            "modelport_shadow_disagreed_rows",
            "Mirrored rows on which the shadow's answer differs from the primary's.",
            ["deployment", "slot"],
            registry=registry,
        )
        self.abs_diff = Counter(
            "modelport_shadow_abs_diff",
            "Sum of absolute differences between shadow and primary scores (divide by rows).",
            ["deployment", "slot"],
            registry=registry,
        )
        self.failures = Counter(
            "modelport_shadow_failures",
            "Mirrored requests the shadow failed to answer (never seen by clients).",
            ["deployment", "slot"],
            registry=registry,
        )
        self.latency = Histogram(
            "modelport_shadow_duration_seconds",
            "Time the shadow took for each mirrored call (copies merged into one call).",
            ["deployment", "slot"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
