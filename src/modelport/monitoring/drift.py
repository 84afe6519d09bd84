"""Live drift: windows of the prediction log against each served version's reference profile.

A :class:`~modelport.monitoring.watch.Watch` runs the check in one process at a time (a
window can be a million rows). Every interval it reads, per served version, the newest logged
requests of the window, turns their inputs into feature columns
(:mod:`modelport.monitoring.features`) and compares them with the reference
(:func:`modelport.monitoring.profile.compare`); the result goes to gauges, and a version that
starts drifting is announced once to the webhook, if one is set.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import numpy as np
import orjson
from prometheus_client import CollectorRegistry, Gauge

from modelport.config import Settings
from modelport.monitoring.features import PREDICTION_OUTPUTS, feature_columns
from modelport.monitoring.gc_pause import gc_paused
from modelport.monitoring.predictions import PredictionStore
from modelport.monitoring.watch import Served, Watch
from modelport.monitoring.webhooks import Announcer, announcer_of
from modelport.registry import Registry
from modelport.store.leases import Leases

if TYPE_CHECKING:  # scipy behind them: loaded when drift is first computed, not at start-up
    from modelport.monitoring.profile import DriftReport, ReferenceProfile

References = Callable[[str, int], "ReferenceProfile | None"]


@dataclass(frozen=True, slots=True)
class Window:
    """Logged traffic of one version as columns: what :func:`compare` takes."""

    columns: dict[str, np.ndarray]
    predictions: np.ndarray | None
    requests: int

    @property
    def rows(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


def window_of(logged: Iterable[tuple[str | None, str | None]]) -> Window:
    """Columns from logged requests (their JSON inputs and outputs); a column a request
    lacks (a field the log drops) is missing for its rows."""
    parts: defaultdict[str, list[Any]] = defaultdict(list)
    predicted: list[Any] = []
    requests = rows = 0
    for inputs_text, outputs_text in logged:
        if inputs_text is None:
            continue
        inputs: dict[str, list[Any]] = orjson.loads(inputs_text)
        n = len(next(iter(inputs.values()))) if inputs else 0
        for name in parts.keys() - inputs.keys():
            parts[name].extend([None] * n)
        for name, values in inputs.items():
            if name not in parts and rows:
                parts[name].extend([None] * rows)
            parts[name].extend(values)
        outputs = orjson.loads(outputs_text) if outputs_text else {}
        named = next((outputs[k] for k in PREDICTION_OUTPUTS if k in outputs), None)
        predicted.extend(named if named is not None and len(named) == n else [None] * n)
        requests += 1
        rows += n
    columns = feature_columns({name: _array(values) for name, values in parts.items()})
    predictions = _array(predicted) if any(p is not None for p in predicted) else None
    return Window(columns, predictions, requests)


def _array(values: list[Any]) -> np.ndarray:
    """Values as numpy infers them, so labels stay labels (``0``, not ``0.0``: categories are
    compared by their text); rows of unequal width, as objects."""
    try:
        return np.array(values)
    except ValueError:
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array


class DriftMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["model", "version"]

        def gauge(name: str, text: str, extra: tuple[str, ...] = ()) -> Gauge:
            # one process computes; "mostrecent" keeps its value when the lease moves
            return Gauge(
                name, text, [*labels, *extra], registry=registry, multiprocess_mode="mostrecent"
            )

        self.feature = gauge(
            "modelport_feature_drift",
            "The statistic deciding each feature's drift (Wasserstein, JS, KS p-value…).",
            ("feature", "statistic"),
        )
        self.feature_drifted = gauge(
            "modelport_feature_drifted", "1 when the feature drifted.", ("feature",)
        )
        self.prediction = gauge(
            "modelport_prediction_drift",
            "The statistic deciding whether the predictions drifted.",
            ("statistic",),
        )
        self.prediction_drifted = gauge(
            "modelport_prediction_drifted", "1 when the predictions drifted."
        )
        self.share = gauge(
            "modelport_dataset_drift_share", "Share of the version's features that drifted."
        )
        self.rows = gauge("modelport_drift_window_rows", "Rows of the last drift window.")

    def show(self, model: str, version: int, report: DriftReport) -> None:
        key = (model, str(version))
        for feature, drift in report.features.items():
            decision = drift.decision
            self.feature.labels(*key, feature, decision.method.value).set(decision.value)
            self.feature_drifted.labels(*key, feature).set(int(drift.drifted))
        if report.predictions is not None:
            decision = report.predictions.decision
            self.prediction.labels(*key, decision.method.value).set(decision.value)
            self.prediction_drifted.labels(*key).set(int(report.predictions.drifted))
        self.share.labels(*key).set(report.dataset.share)
        self.rows.labels(*key).set(report.rows)


@dataclass(frozen=True, slots=True)
class DriftPolicy:
    window: timedelta = timedelta(hours=1)
    interval_s: float = 60.0
    min_rows: int = 100
    """Fewer logged rows than this in a window: no verdict (too little to say anything)."""
    max_rows: int = 1_000_000
    """The newest requests of a window read at most (bounds memory and time)."""


@dataclass(frozen=True, slots=True)
class DriftResult:
    """A version's drift over one window, with what it was computed from (the HTML report
    plots both sides); ``report`` None with the ``reason`` when there is none."""

    model: str
    version: int
    since: datetime
    until: datetime
    report: DriftReport | None
    reason: str = ""
    reference: ReferenceProfile | None = None
    current: Window | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "report": None if self.report is None else self.report.to_dict(),
            "reason": self.reason or None,
        }


class DriftReports:
    """Drift of one version over a window of the log: for the monitor, the API and the CLI."""

    def __init__(self, store: PredictionStore, references: References, policy: DriftPolicy):
        self._store = store
        self._references = references
        self.policy = policy

    @gc_paused
    def report(self, model: str, version: int, window: timedelta | None = None) -> DriftResult:
        until = datetime.now(UTC)
        since = until - (window or self.policy.window)
        reference = self._references(model, version)
        if reference is None:
            reason = f"{model}/{version} has no reference profile"
            return DriftResult(model, version, since, until, None, reason)
        logged = self._store.window(model, version, since, until, self.policy.max_rows)
        current = window_of(logged)
        if current.rows < self.policy.min_rows:
            reason = (
                f"{current.rows} logged rows of {model}/{version} in the window; drift needs "
                f"{self.policy.min_rows}"
            )
            return DriftResult(model, version, since, until, None, reason, reference, current)
        from modelport.monitoring.profile import compare

        report = compare(reference, current.columns, current.predictions)
        return DriftResult(model, version, since, until, report, "", reference, current)


def drift_reports_of(settings: Settings, registry: Registry) -> DriftReports:
    policy = DriftPolicy(
        timedelta(seconds=settings.drift_window_s),
        settings.drift_interval_s,
        settings.drift_min_rows,
        settings.drift_max_rows,
    )

    def reference(name: str, version: int) -> ReferenceProfile | None:
        from modelport.monitoring import references

        return references.load(registry, name, version)

    return DriftReports(PredictionStore(registry.database), reference, policy)


def drift_watch_of(
    settings: Settings,
    registry: Registry,
    served: Served,
    metrics_registry: CollectorRegistry,
    holder: str,
) -> Watch | None:
    """The server's drift watch as configured: None without a prediction log (nothing to
    compare) or with ``drift_interval_s`` 0."""
    if not settings.prediction_log or settings.drift_interval_s <= 0:
        return None
    check = DriftCheck(
        drift_reports_of(settings, registry),
        DriftMetrics(metrics_registry),
        announcer_of(settings),
    )
    leases = Leases(registry.database, holder)
    return Watch("drift", settings.drift_interval_s, served, leases, check)


class DriftCheck:
    """One version's drift: computed, shown in the gauges, announced if it starts."""

    def __init__(
        self,
        reports: DriftReports,
        metrics: DriftMetrics,
        announce: Announcer | None = None,
    ) -> None:
        self._reports = reports
        self._metrics = metrics
        self._announce = announce

    def __call__(self, model: str, version: int) -> None:
        report = self._reports.report(model, version).report
        if report is None:
            return
        self._metrics.show(model, version, report)
        if self._announce is not None:
            drifting = report.dataset.drifted or (
                report.predictions is not None and report.predictions.drifted
            )
            query = urlencode({"model": model, "version": version, "format": "html"})
            findings = drift_findings(report)
            self._announce("drift", model, version, drifting, findings, f"/api/drift?{query}")


def drift_findings(report: DriftReport) -> dict[str, Any]:
    """What a webhook message says about a version's drift."""
    return {
        "rows": report.rows,
        "dataset_drift_share": report.dataset.share,
        "drifted_features": list(report.drifted_features),
        "predictions_drifted": None if report.predictions is None else report.predictions.drifted,
    }
