"""Prometheus alert rules for what modelport exports: latency, errors, drift, quality, the
prediction log and model loading.

``rules`` returns a rule file (``groups`` → ``rules``) as plain data; ``modelport export
alerts`` writes it as YAML for Prometheus ``rule_files`` or a PrometheusRule resource. Every
expression names only metrics the server exports (a test checks each against a live registry
and parses it as PromQL), aggregated per model so one alert names the model at fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class AlertThresholds:
    p95_ms: float = 250.0
    p99_ms: float = 1000.0
    error_rate: float = 0.01
    """Share of inference requests answered 5xx."""
    drift_share: float = 0.5
    """Share of a version's features drifted (dataset drift)."""
    quality_drop: float = 0.05
    """Fall of accuracy, F1, ROC AUC or R² against the same hour a day before."""
    window: str = "5m"
    """Rate window of the latency and error expressions."""


def rules(thresholds: AlertThresholds = AlertThresholds()) -> dict[str, Any]:
    t = thresholds
    inference = 'protocol!="api"'
    return {
        "groups": [
            {
                "name": "modelport",
                "rules": [
                    _latency(95, t.p95_ms, t.window, inference),
                    _latency(99, t.p99_ms, t.window, inference),
                    _rule(
                        "ModelportHighErrorRate",
                        f'sum by (model) (rate(modelport_request_errors_total{{status=~"5..",'
                        f"{inference}}}[{t.window}])) / sum by (model) "
                        f"(rate(modelport_requests_total{{{inference}}}[{t.window}])) "
                        f"> {t.error_rate:g}",
                        "10m",
                        "critical",
                        "{{ $labels.model }} answers {{ $value | humanizePercentage }} of "
                        "requests with a 5xx",
                    ),
                    _rule(
                        "ModelportDatasetDrift",
                        f"max by (model, version) (modelport_dataset_drift_share) "
                        f"> {t.drift_share:g}",
                        "30m",
                        "warning",
                        "{{ $value | humanizePercentage }} of the features of "
                        "{{ $labels.model }}/{{ $labels.version }} drifted from the reference",
                    ),
                    _rule(
                        "ModelportPredictionDrift",
                        "max by (model, version) (modelport_prediction_drifted) == 1",
                        "30m",
                        "warning",
                        "the predictions of {{ $labels.model }}/{{ $labels.version }} drifted "
                        "from the reference",
                    ),
                    _rule(
                        "ModelportQualityDrop",
                        "max by (model, version, metric) "
                        '(modelport_model_quality{metric=~"accuracy|f1|roc_auc|r2"}) - '
                        "max by (model, version, metric) "
                        '(modelport_model_quality{metric=~"accuracy|f1|roc_auc|r2"} offset 1d) '
                        f"< -{t.quality_drop:g}",
                        "1h",
                        "warning",
                        "{{ $labels.metric }} of {{ $labels.model }}/{{ $labels.version }} "
                        "fell by {{ $value | humanize }} in a day",
                    ),
                    _rule(
                        "ModelportPredictionLogDrops",
                        'sum by (instance) (increase(modelport_observer_dropped_total{observer="'
                        'prediction_log"}[10m])) > 0',
                        "0m",
                        "warning",
                        "the prediction log dropped {{ $value | humanize }} requests: its "
                        "database is slow or unreachable",
                    ),
                    _rule(
                        "ModelportModelLoadFailed",
                        "sum by (model, version) "
                        "(increase(modelport_model_load_failures_total[15m])) > 0",
                        "0m",
                        "critical",
                        "{{ $labels.model }}/{{ $labels.version }} failed to load or warm up",
                    ),
                ],
            }
        ]
    }


def _latency(quantile: int, limit_ms: float, window: str, selector: str) -> dict[str, Any]:
    return _rule(
        f"ModelportHighP{quantile}Latency",
        f"histogram_quantile(0.{quantile}, sum by (le, model) "
        f"(rate(modelport_request_duration_seconds_bucket{{{selector}}}[{window}]))) "
        f"> {limit_ms / 1000:g}",
        "10m",
        "warning",
        f"p{quantile} latency of {{{{ $labels.model }}}} is {{{{ $value | humanizeDuration }}}}",
    )


def _rule(name: str, expr: str, wait: str, severity: str, description: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": wait,
        "labels": {"severity": severity},
        "annotations": {"summary": name, "description": description},
    }
