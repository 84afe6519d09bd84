"""The Grafana dashboard and the alert rules name only metrics a live server exports, in
PromQL that parses: the server is started with every metric family on (deployments and
experiments, the prediction log, drift and quality) and its /metrics is scraped."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import promql_parser
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings
from modelport.deploy.grafana import dashboard
from modelport.monitoring.alerts import rules
from tests.api.conftest import serving

METRIC = re.compile(r"\bmodelport_[a-z_]+")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$model": ".*"}


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, Any],
) -> set[str]:
    """Every sample name a fully equipped live server shows on /metrics."""
    home = tmp_path_factory.mktemp("dashboards")
    settings = Settings(
        home=home,
        prediction_log=True,
        all_deployments=True,
        drift_interval_s=60,
        quality_interval_s=60,
    )
    modelport.log_model(iris_logreg, "iris", iris_data[0][:10], settings=settings)
    with serving(settings, ["iris"]) as client:
        client.post("/v1/models/iris:predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]})
        text = client.get("/metrics").text
    names = set()
    for family in text_string_to_metric_families(text):
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names


def _grafana_expressions() -> list[str]:
    board = dashboard()
    found = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    found += [v["query"]["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    return found


@pytest.mark.parametrize("expression", _grafana_expressions())
def test_every_dashboard_query_parses_and_names_exported_metrics(
    expression: str, exported: set[str]
) -> None:
    promql = expression
    for variable, value in GRAFANA_VARIABLES.items():
        promql = promql.replace(variable, value)
    if not promql.startswith("label_values("):  # a Grafana function, not PromQL
        promql_parser.parse(promql)
    named = set(METRIC.findall(expression))
    assert named
    assert named <= exported, named - exported


@pytest.mark.parametrize("rule", rules()["groups"][0]["rules"], ids=lambda r: str(r["alert"]))
def test_every_alert_names_metrics_a_live_server_exports(
    rule: dict[str, Any], exported: set[str]
) -> None:
    named = set(METRIC.findall(str(rule["expr"])))
    assert named <= exported, named - exported


def test_the_dashboard_is_laid_out_and_filtered_by_model(exported: set[str]) -> None:
    board = dashboard("fraud")
    assert board["title"] == "fraud"
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
    cells = {(p["gridPos"]["x"], p["gridPos"]["y"]) for p in panels}
    assert len(cells) == len(panels)  # no two panels on one spot
    per_model = [t["expr"] for p in panels for t in p["targets"] if "model" in t["legendFormat"]]
    assert all('model=~"$model"' in e for e in per_model)
    # a scrape without the metric would fail the check above: the check can fail
    assert "modelport_request_duration_seconds_bucket" in exported
    assert "modelport_requests_seconds_bucket" not in exported
