"""What a deployment is doing right now, across replicas: for ``deployments status``.

The stored spec and state say what should happen; the replicas' heartbeats say what each
process actually serves (and at which revision), and the samples of the current epoch give
each slot's live figures over the gate window, summed over every replica.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, cast

from modelport.rollout.store import Deployment
from modelport.rollout.telemetry import Telemetry
from modelport.rollout.window import SlotWindow, SlotWindowJson

LIVE_WITHIN = timedelta(seconds=10)
"""A replica whose heartbeat is older is not listed (it stopped, or lost the database)."""


def merged_windows(
    telemetry: Telemetry, deployment: Deployment, since: datetime
) -> dict[str, SlotWindow]:
    """Every replica's figures per slot for the current epoch since ``since``, summed."""
    merged: dict[str, SlotWindow] = {}
    samples = telemetry.samples(deployment.name, deployment.state.epoch, since)
    for slot, windows in samples.items():
        total = SlotWindow()
        for window in windows:
            total.merge(SlotWindow.from_json(cast(SlotWindowJson, window)))
        merged[slot] = total
    return merged


def gate_window_start(deployment: Deployment, now: datetime) -> datetime:
    """Gates look back over the spec's window, never before the current epoch began."""
    return max(deployment.state.since, now - timedelta(seconds=deployment.spec.window_s))


def describe(deployment: Deployment, telemetry: Telemetry, now: datetime) -> dict[str, Any]:
    replicas = []
    for replica in telemetry.replicas(LIVE_WITHIN):
        for served in replica.serving.get("deployments", []):
            if served.get("name") == deployment.name:
                replicas.append(
                    {"replica": replica.id, "seen_at": replica.seen_at.isoformat(), **served}
                )
    windows = merged_windows(telemetry, deployment, gate_window_start(deployment, now))
    return {
        **deployment.to_dict(),
        "converged": bool(replicas) and all(r["revision"] == deployment.revision for r in replicas),
        "replicas": replicas,
        "figures": {slot: figures(window) for slot, window in windows.items()},
    }


def figures(window: SlotWindow) -> dict[str, Any]:
    """A slot's window as numbers a person reads (milliseconds, rates)."""
    p99 = window.p99_s
    return {
        "requests": window.requests,
        "errors": window.errors,
        "error_rate": window.error_rate,
        # beyond the histogram's last edge (minutes) there is no finite figure to give
        "p99_ms": None if p99 is None or not math.isfinite(p99) else p99 * 1000,
        "compared_rows": window.compared,
        "disagreement_rate": window.disagreement_rate,
        "mean_abs_diff": window.mean_abs_diff,
        "max_abs_diff": window.abs_diff_max if window.compared else None,
        "shadow_failures": window.shadow_failures,
    }
