"""SLO gates: the limits a canary must stay within for its rollout to go on.

`evaluate` answers BREACH (roll back), WAIT (too little evidence) or PASS. Evidence rules:

- Nothing passes before the canary has served `min_requests` requests.
- Error rate and shadow disagreement are shares, so a clearly broken slot is caught early: once
  the sample holds `EARLY_SAMPLE` (20) requests or rows, a share over its limit breaches if the
  breach is already certain at `min_requests` (errors > limit · min_requests) or if the share's
  99 % Wilson lower bound is over the limit. 1 error in 2 requests waits; 10 in 50 against a
  5 % limit breaches. From `min_requests` on, the observed share decides.
- p99 and drift are judged on full samples only (canary at `min_requests`): the p99 of a few
  requests is their maximum, and the PSI of a few rows is noise. Drift also needs
  `DRIFT_MIN_ROWS` predictions on each side; the canary waits for them.
- The gates relative to the primary (p99 increase, drift) are not judged, and say so in the
  reasons, while the primary has fewer than `min_requests` requests (or `DRIFT_MIN_ROWS`
  predictions): a canary taking all the traffic must not wait forever for a comparison.
- The shadow gate needs `min_requests` mirrored rows to pass (a failed mirror counts as one
  disagreeing row); until then it waits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from modelport.rollout.histograms import psi
from modelport.rollout.window import SlotWindow


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


class Verdict(StrEnum):
    PASS = "pass"
    WAIT = "wait"
    BREACH = "breach"


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A verdict with its reasons and the figures measured, so the controller can record why."""

    verdict: Verdict
    reasons: tuple[str, ...]
    """Breaches for BREACH, what is missing for WAIT, gates left unjudged for PASS."""
    figures: dict[str, float | None]
    """canary_requests, primary_requests, canary_error_rate, canary_p99_ms, primary_p99_ms,
    shadow_disagreement, prediction_drift; None when unmeasured (p99 may be inf, see quantile)."""


EARLY_SAMPLE = 20
"""Fewest requests (or mirrored rows) on which a share may breach before `min_requests`."""
WILSON_Z = 2.326
"""One-sided 99 %: an early breach is wrong about once in a hundred looks at a healthy canary."""
DRIFT_MIN_ROWS = 500
"""PSI of two samples of n rows from one distribution is about (bins - 1) · 2 / n: 0.04 here."""


@dataclass(frozen=True, slots=True)
class _Finding:
    verdict: Verdict
    reason: str


def evaluate(
    limits: GateLimits,
    *,
    primary: SlotWindow,
    canary: SlotWindow,
    shadow: SlotWindow | None,
    min_requests: int,
) -> Evaluation:
    """Judge the canary's window against every set gate (rules in the module docstring)."""
    if min_requests < 1:
        raise ValueError(f"min_requests must be at least 1, not {min_requests}")
    drift = psi(primary.predictions, canary.predictions)
    figures = {
        "canary_requests": float(canary.requests),
        "primary_requests": float(primary.requests),
        "canary_error_rate": canary.error_rate,
        "canary_p99_ms": _ms(canary.p99_s),
        "primary_p99_ms": _ms(primary.p99_s),
        "shadow_disagreement": shadow.disagreement_rate if shadow else None,
        "prediction_drift": drift,
    }
    findings = [
        _error_rate(limits.max_error_rate, canary, min_requests),
        _p99(limits.max_p99_ms, canary, min_requests),
        _p99_increase(limits.max_p99_increase, primary, canary, min_requests),
        _disagreement(limits.max_shadow_disagreement, shadow, min_requests),
        _drift(limits.max_prediction_drift, drift, primary, canary, min_requests),
    ]
    if canary.requests < min_requests:
        reason = f"canary served {canary.requests} of the {min_requests} requests needed"
        findings.append(_Finding(Verdict.WAIT, reason))
    for verdict in (Verdict.BREACH, Verdict.WAIT):
        reasons = _reasons(findings, verdict)
        if reasons:
            return Evaluation(verdict, reasons, figures)
    return Evaluation(Verdict.PASS, _reasons(findings, Verdict.PASS), figures)


def _reasons(findings: list[_Finding | None], verdict: Verdict) -> tuple[str, ...]:
    return tuple(f.reason for f in findings if f is not None and f.verdict is verdict)


def _error_rate(limit: float | None, canary: SlotWindow, min_requests: int) -> _Finding | None:
    rate = canary.error_rate
    if limit is None or rate is None or rate <= limit:
        return None
    if not _share_breached(canary.errors, canary.requests, limit, min_requests):
        return None
    reason = f"canary error rate {_pct(rate)} over {canary.requests} requests exceeds {_pct(limit)}"
    return _Finding(Verdict.BREACH, reason)


def _p99(limit_ms: float | None, canary: SlotWindow, min_requests: int) -> _Finding | None:
    p99_ms = _ms(canary.p99_s)
    if limit_ms is None or p99_ms is None or canary.requests < min_requests:
        return None
    if p99_ms <= limit_ms:
        return None
    return _Finding(Verdict.BREACH, f"canary p99 {p99_ms:.1f} ms exceeds {limit_ms:g} ms")


def _p99_increase(
    limit: float | None, primary: SlotWindow, canary: SlotWindow, min_requests: int
) -> _Finding | None:
    p99_ms, base_ms = _ms(canary.p99_s), _ms(primary.p99_s)
    if limit is None or p99_ms is None or canary.requests < min_requests:
        return None
    if base_ms is None or primary.requests < min_requests:
        reason = f"p99 increase not judged: primary served {primary.requests} requests"
        return _Finding(Verdict.PASS, reason)
    if p99_ms <= base_ms * (1 + limit):
        return None
    reason = (
        f"canary p99 {p99_ms:.1f} ms is {_pct(p99_ms / base_ms - 1)} above the primary's "
        f"{base_ms:.1f} ms, over the {_pct(limit)} allowed"
    )
    return _Finding(Verdict.BREACH, reason)


def _disagreement(
    limit: float | None, shadow: SlotWindow | None, min_requests: int
) -> _Finding | None:
    if limit is None or shadow is None:
        return None
    rows = shadow.compared + shadow.shadow_failures
    rate = shadow.disagreement_rate
    bad = shadow.disagreed + shadow.shadow_failures
    if rate is not None and rate > limit and _share_breached(bad, rows, limit, min_requests):
        reason = f"shadow disagrees on {_pct(rate)} of {rows} mirrored rows, over {_pct(limit)}"
        return _Finding(Verdict.BREACH, reason)
    if rows < min_requests:
        reason = f"shadow compared {rows} of the {min_requests} mirrored rows needed"
        return _Finding(Verdict.WAIT, reason)
    return None


def _drift(
    limit: float | None,
    drift: float | None,
    primary: SlotWindow,
    canary: SlotWindow,
    min_requests: int,
) -> _Finding | None:
    if limit is None or canary.requests < min_requests:
        return None
    if canary.predictions.count < DRIFT_MIN_ROWS:
        reason = (
            f"canary made {canary.predictions.count} of the {DRIFT_MIN_ROWS} predictions "
            "needed to judge drift"
        )
        return _Finding(Verdict.WAIT, reason)
    if (
        drift is None
        or primary.requests < min_requests
        or primary.predictions.count < DRIFT_MIN_ROWS
    ):
        reason = (
            f"prediction drift not judged: primary made {primary.predictions.count} "
            f"predictions over {primary.requests} requests"
        )
        return _Finding(Verdict.PASS, reason)
    if drift <= limit:
        return None
    reason = (
        f"prediction drift (PSI) {drift:.3f} of the canary against the primary exceeds {limit:g}"
    )
    return _Finding(Verdict.BREACH, reason)


def _share_breached(bad: int, total: int, limit: float, min_total: int) -> bool:
    """Whether a share over its limit has enough evidence yet (see the module docstring)."""
    if total >= min_total:
        return True
    if total < EARLY_SAMPLE:
        return False
    return bad > limit * min_total or _wilson_lower(bad, total) > limit


def _wilson_lower(successes: int, trials: int) -> float:
    """Lower bound of the Wilson score interval: sound on small samples and near 0 or 1."""
    p, z2 = successes / trials, WILSON_Z**2
    centre = p + z2 / (2 * trials)
    margin = WILSON_Z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials**2))
    return (centre - margin) / (1 + z2 / trials)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _pct(share: float) -> str:
    return f"{share * 100:.1f} %"
