"""SLO gates: the limits a canary must stay within for its rollout to go on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GateLimits:
    """Every limit is optional; a gate that is not set always passes."""

    max_error_rate: float | None = None
    """Share of the canary's requests answered with a server error (5xx), 0..1."""
    max_p99_ms: float | None = None
    """The canary's 99th percentile latency, in milliseconds."""
    max_p99_increase: float | None = None
    """The canary's p99 relative to the primary's over the same window: 0.2 allows +20 %."""
    max_shadow_disagreement: float | None = None
    """Share of mirrored rows on which the shadow's answer differs from the primary's, 0..1."""
    max_prediction_drift: float | None = None
    """Population stability index of the canary's predictions against the primary's."""
