"""The Grafana dashboard of a modelport installation, as the dashboard JSON model Grafana
imports (and provisioning loads from a folder).

Rows follow an on-call engineer's questions: is it answering (rate, errors by version,
latency percentiles), is it keeping up (in-flight requests, rows per model call, queue wait,
load failures, observer drops), are the deployments and experiments doing what they should
(slot weights, shadow disagreement, experiment traffic), and is the model still right (drift
and quality). Every query names only metrics the server exports: a test scrapes a live server
and checks each one. A ``model`` variable filters every panel; the data source is a variable
too, so the same file imports into any Grafana.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

UID = "modelport-overview"
RATE = "$__rate_interval"
MODEL = 'model=~"$model"'
INFERENCE = 'protocol!="api"'


@dataclass(frozen=True, slots=True)
class Panel:
    title: str
    queries: tuple[tuple[str, str], ...]
    """(PromQL expression, legend) per series."""
    unit: str = "short"
    description: str = ""


@dataclass(frozen=True, slots=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


def _quantile(q: float) -> tuple[str, str]:
    return (
        f"histogram_quantile({q}, sum by (le, model) (rate("
        f"modelport_request_duration_seconds_bucket{{{MODEL},{INFERENCE}}}[{RATE}])))",
        f"p{round(q * 100)} {{{{model}}}}",
    )


ROWS = (
    Row(
        "Traffic",
        (
            Panel(
                "Requests per second by version",
                (
                    (
                        f"sum by (model, version) (rate(modelport_requests_total"
                        f"{{{MODEL},{INFERENCE}}}[{RATE}]))",
                        "{{model}} v{{version}}",
                    ),
                ),
                "reqps",
            ),
            Panel(
                "Errors per second by version and status",
                (
                    (
                        f"sum by (model, version, status) (rate(modelport_request_errors_total"
                        f"{{{MODEL},{INFERENCE}}}[{RATE}]))",
                        "{{model}} v{{version}} {{status}}",
                    ),
                ),
                "reqps",
                "4xx are the callers' mistakes; 5xx are ours (or the model's).",
            ),
            Panel(
                "Latency p50 / p95 / p99", (_quantile(0.5), _quantile(0.95), _quantile(0.99)), "s"
            ),
        ),
    ),
    Row(
        "Capacity",
        (
            Panel(
                "Requests in flight",
                (("sum by (protocol) (modelport_requests_in_flight)", "{{protocol}}"),),
            ),
            Panel(
                "Rows per model call (mean)",
                (
                    (
                        f"sum by (model) (rate(modelport_batch_rows_sum{{{MODEL}}}[{RATE}])) / "
                        f"sum by (model) (rate(modelport_batch_rows_count{{{MODEL}}}[{RATE}]))",
                        "{{model}}",
                    ),
                ),
                description="Adaptive batching merges concurrent requests into one call.",
            ),
            Panel(
                "Queue wait p99",
                (
                    (
                        f"histogram_quantile(0.99, sum by (le, model) (rate("
                        f"modelport_queue_wait_seconds_bucket{{{MODEL}}}[{RATE}])))",
                        "{{model}}",
                    ),
                ),
                "s",
            ),
            Panel(
                "Model load failures",
                (
                    (
                        f"sum by (model, version) (increase("
                        f"modelport_model_load_failures_total{{{MODEL}}}[1h]))",
                        "{{model}} v{{version}}",
                    ),
                ),
                description="Versions that failed to load or warm up in the last hour.",
            ),
            Panel(
                "Observer drops and prediction-log backlog",
                (
                    (
                        f"sum by (observer) (rate(modelport_observer_dropped_total[{RATE}]))",
                        "dropped: {{observer}}",
                    ),
                    ("sum(modelport_prediction_log_queued)", "log queued"),
                ),
            ),
        ),
    ),
    Row(
        "Deployments and experiments",
        (
            Panel(
                "Slot weights",
                (
                    (
                        "max by (deployment, slot) (modelport_deployment_slot_weight_percent)",
                        "{{deployment}}/{{slot}}",
                    ),
                ),
                "percent",
            ),
            Panel(
                "Shadow disagreement",
                (
                    (
                        f"sum by (deployment, slot) (rate("
                        f"modelport_shadow_disagreed_rows_total[{RATE}])) / sum by "
                        f"(deployment, slot) (rate(modelport_shadow_rows_total[{RATE}]))",
                        "{{deployment}}/{{slot}}",
                    ),
                ),
                "percentunit",
            ),
            Panel(
                "Experiment traffic by variant",
                (
                    (
                        f"sum by (experiment, variant) (rate("
                        f"modelport_experiment_requests_total[{RATE}]))",
                        "{{experiment}}: {{variant}}",
                    ),
                ),
                "reqps",
            ),
        ),
    ),
    Row(
        "Drift and quality",
        (
            Panel(
                "Share of features drifted",
                (
                    (
                        f"max by (model, version) (modelport_dataset_drift_share{{{MODEL}}})",
                        "{{model}} v{{version}}",
                    ),
                ),
                "percentunit",
            ),
            Panel(
                "Prediction drift",
                (
                    (
                        f"max by (model, version, statistic) "
                        f"(modelport_prediction_drift{{{MODEL}}})",
                        "{{model}} v{{version}} {{statistic}}",
                    ),
                ),
            ),
            Panel(
                "Model quality",
                (
                    (
                        f"max by (model, version, metric) (modelport_model_quality{{{MODEL}}})",
                        "{{model}} v{{version}} {{metric}}",
                    ),
                ),
                description="Over the labelled answers of the quality window.",
            ),
        ),
    ),
)


def dashboard(title: str = "modelport") -> dict[str, Any]:
    """The dashboard JSON model."""
    panels: list[dict[str, Any]] = []
    y = 0
    for row in ROWS:
        panels.append(
            {
                "type": "row",
                "title": row.title,
                "id": len(panels) + 1,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        y += 1
        width = 24 // len(row.panels) if len(row.panels) <= 3 else 8
        for index, panel in enumerate(row.panels):
            x = (index * width) % 24
            if index and x == 0:
                y += 8
            panels.append(_panel(panel, len(panels) + 1, {"h": 8, "w": width, "x": x, "y": y}))
        y += 8
    return {
        "uid": UID,
        "title": title,
        "tags": ["modelport"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [_datasource_variable(), _model_variable()]},
        "annotations": {"list": []},
        "panels": panels,
    }


def _panel(panel: Panel, panel_id: int, grid: dict[str, int]) -> dict[str, Any]:
    return {
        "type": "timeseries",
        "title": panel.title,
        "description": panel.description,
        "id": panel_id,
        "gridPos": grid,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
        "targets": [
            {
                "refId": chr(ord("A") + index),
                "expr": expression,
                "legendFormat": legend,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
            }
            for index, (expression, legend) in enumerate(panel.queries)
        ],
    }


def _datasource_variable() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
    }


def _model_variable() -> dict[str, Any]:
    query = "label_values(modelport_requests_total, model)"
    return {
        "name": "model",
        "label": "Model",
        "type": "query",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "query": {"query": query, "refId": "models"},
        "definition": query,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
        "refresh": 2,
        "sort": 1,
        "hide": 0,
    }
