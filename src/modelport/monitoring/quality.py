"""Model quality from logged answers and their ground truth: pure functions over arrays, and
the step from joined log rows to those arrays.

Classifiers (outputs ``label``, ``probabilities``): accuracy; precision, recall and F1 of the
positive class when there are two classes (the larger label, as scikit-learn orders them),
macro averages otherwise; ROC AUC (one-vs-rest, macro, for more than two classes) and log loss
from the probabilities. Regressors (output ``prediction``): MAE, RMSE and R². A metric that
cannot be computed on the rows at hand (AUC with one class present, R² of one row) is None.

The probabilities' columns are the model's classes in sorted order (scikit-learn's
``classes_``). The classes are the labels seen in the answers and truths; when they are fewer
than the columns (a class never predicted nor observed), the probability metrics are None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import numpy as np
import orjson
from prometheus_client import CollectorRegistry, Gauge

from modelport.config import QualityMetric, Settings
from modelport.monitoring.feedback import FeedbackStore, Labelled
from modelport.monitoring.gc_pause import gc_paused
from modelport.monitoring.watch import Served, Watch
from modelport.monitoring.webhooks import Announcer, announcer_of
from modelport.registry import Registry
from modelport.store.leases import Leases


@dataclass(frozen=True, slots=True)
class Quality:
    kind: str
    """``classification`` or ``regression``."""
    rows: int
    metrics: dict[str, float | None]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "rows": self.rows, "metrics": self.metrics}


def classification(
    truth: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray | None = None
) -> Quality:
    from sklearn import metrics  # loaded on first use: a server or CLI start does without

    classes = np.unique(np.concatenate([truth, predicted]))
    binary = classes.size == 2
    average = "binary" if binary else "macro"
    positive = classes[-1] if binary else 1
    scores: dict[str, float | None] = {
        "accuracy": float(metrics.accuracy_score(truth, predicted)),
        "precision": float(
            metrics.precision_score(
                truth, predicted, average=average, pos_label=positive, zero_division=0
            )
        ),
        "recall": float(
            metrics.recall_score(
                truth, predicted, average=average, pos_label=positive, zero_division=0
            )
        ),
        "f1": float(
            metrics.f1_score(truth, predicted, average=average, pos_label=positive, zero_division=0)
        ),
        "roc_auc": None,
        "log_loss": None,
    }
    if probabilities is not None and probabilities.shape[1] == classes.size:
        scores["log_loss"] = float(metrics.log_loss(truth, probabilities, labels=classes))
        if np.unique(truth).size > 1:
            scores["roc_auc"] = _roc_auc(truth, probabilities, classes)
    return Quality("classification", int(truth.size), scores)


def _roc_auc(truth: np.ndarray, probabilities: np.ndarray, classes: np.ndarray) -> float | None:
    from sklearn import metrics

    if classes.size == 2:
        return float(metrics.roc_auc_score(truth == classes[1], probabilities[:, 1]))
    if np.unique(truth).size < classes.size:  # one-vs-rest needs every class among the truths
        return None
    return float(
        metrics.roc_auc_score(
            truth, probabilities, multi_class="ovr", average="macro", labels=classes
        )
    )


def regression(truth: np.ndarray, predicted: np.ndarray) -> Quality:
    from sklearn import metrics

    truth, predicted = truth.astype(np.float64), predicted.astype(np.float64)
    return Quality(
        "regression",
        int(truth.size),
        {
            "mae": float(metrics.mean_absolute_error(truth, predicted)),
            "rmse": float(np.sqrt(metrics.mean_squared_error(truth, predicted))),
            "r2": float(metrics.r2_score(truth, predicted)) if truth.size > 1 else None,
        },
    )


def quality_of(labelled: Sequence[Labelled]) -> Quality | None:
    """Quality over joined rows; None when there are none (or no usable output)."""
    truths: list[Any] = []
    labels: list[Any] = []
    probabilities: list[list[float]] = []
    values: list[Any] = []
    for item in labelled:
        outputs = orjson.loads(item.outputs)
        if "label" in outputs and item.row < len(outputs["label"]):
            labels.append(outputs["label"][item.row])
            if "probabilities" in outputs:
                probabilities.append(outputs["probabilities"][item.row])
        elif "prediction" in outputs and item.row < len(outputs["prediction"]):
            values.append(outputs["prediction"][item.row])
        else:
            continue
        truths.append(item.truth)
    if labels and not values:
        complete = len(probabilities) == len(labels)
        return classification(
            np.array(truths), np.array(labels), np.array(probabilities) if complete else None
        )
    if values and not labels:
        return regression(np.array(truths), np.array(values))
    return None


@dataclass(frozen=True, slots=True)
class Breach:
    metric: str
    value: float
    limit: float
    bound: str
    """``floor`` (the value fell below it) or ``ceiling`` (rose above it)."""


def breaches_of(quality: Quality, limits: Mapping[QualityMetric, float]) -> list[Breach]:
    """The limits the figures pass; a metric the quality lacks (AUC of one class) passes none."""
    found = []
    for name, limit in limits.items():
        metric = QualityMetric(name)
        value = quality.metrics.get(metric.value)
        if value is None:
            continue
        if metric.lower_is_better and value > limit:
            found.append(Breach(metric.value, value, limit, "ceiling"))
        elif not metric.lower_is_better and value < limit:
            found.append(Breach(metric.value, value, limit, "floor"))
    return found


class QualityMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        # one process computes; "mostrecent" keeps its value when the lease moves
        self.value = Gauge(
            "modelport_model_quality",
            "Quality of each version over the window of labelled answers (accuracy, f1, "
            "roc_auc, log_loss, mae, rmse, r2…).",
            ["model", "version", "metric"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.rows = Gauge(
            "modelport_model_quality_rows",
            "Labelled answers the quality figures were computed from.",
            ["model", "version"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )

    def show(self, model: str, version: int, quality: Quality) -> None:
        for name, value in quality.metrics.items():
            if value is not None:
                self.value.labels(model, str(version), name).set(value)
        self.rows.labels(model, str(version)).set(quality.rows)


@dataclass(frozen=True, slots=True)
class QualityResult:
    model: str
    version: int
    since: datetime
    until: datetime
    quality: Quality | None
    breaches: list[Breach] | None = None
    """The ``quality_limits`` passed; None: no verdict (no limits, or too few rows)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "quality": None if self.quality is None else self.quality.to_dict(),
            "breaches": None if self.breaches is None else [asdict(b) for b in self.breaches],
        }


class QualityReports:
    """Quality of one version over a window: for the watch, the API and the CLI."""

    def __init__(
        self,
        store: FeedbackStore,
        window: timedelta,
        max_rows: int,
        limits: Mapping[QualityMetric, float] | None = None,
        min_rows: int = 1,
    ) -> None:
        """``limits`` are judged on ``min_rows`` labelled rows or more."""
        self._store = store
        self.window = window
        self._max_rows = max_rows
        self._limits = limits or {}
        self._min_rows = min_rows

    @gc_paused
    def report(self, model: str, version: int, window: timedelta | None = None) -> QualityResult:
        until = datetime.now(UTC)
        since = until - (window or self.window)
        labelled = self._store.labelled(model, version, since, until, self._max_rows)
        quality = quality_of(labelled)
        breaches = None
        if quality is not None and self._limits and quality.rows >= self._min_rows:
            breaches = breaches_of(quality, self._limits)
        return QualityResult(model, version, since, until, quality, breaches)


def quality_reports_of(settings: Settings, registry: Registry) -> QualityReports:
    return QualityReports(
        FeedbackStore(registry.database),
        timedelta(seconds=settings.quality_window_s),
        settings.quality_max_rows,
        settings.quality_limits,
        settings.quality_min_rows,
    )


def quality_watch_of(
    settings: Settings,
    registry: Registry,
    served: Served,
    metrics_registry: CollectorRegistry,
    holder: str,
) -> Watch | None:
    """The server's quality watch: None without a prediction log or with interval 0."""
    if not settings.prediction_log or settings.quality_interval_s <= 0:
        return None
    check = QualityCheck(
        quality_reports_of(settings, registry),
        QualityMetrics(metrics_registry),
        announcer_of(settings),
    )
    leases = Leases(registry.database, holder)
    return Watch("quality", settings.quality_interval_s, served, leases, check)


class QualityCheck:
    """One version's quality: computed, shown in the gauges, announced if it breaches."""

    def __init__(
        self, reports: QualityReports, metrics: QualityMetrics, announce: Announcer | None
    ) -> None:
        self._reports = reports
        self._metrics = metrics
        self._announce = announce

    def __call__(self, model: str, version: int) -> None:
        result = self._reports.report(model, version)
        if result.quality is None:
            return
        self._metrics.show(model, version, result.quality)
        if self._announce is not None and result.breaches is not None:
            findings = {
                "rows": result.quality.rows,
                "metrics": result.quality.metrics,
                "breaches": [asdict(b) for b in result.breaches],
            }
            query = urlencode({"model": f"{model}/{version}"})
            self._announce(
                "quality", model, version, bool(result.breaches), findings, f"/api/quality?{query}"
            )
