"""The generated alert rules are valid PromQL and name only metrics the server exports."""

from __future__ import annotations

import re

import promql_parser
import pytest
import yaml
from prometheus_client import CollectorRegistry

from modelport.inference.metrics import ServingMetrics
from modelport.monitoring.alerts import AlertThresholds, rules
from modelport.monitoring.drift import DriftMetrics
from modelport.monitoring.prediction_log import PredictionLogMetrics
from modelport.monitoring.quality import QualityMetrics
from modelport.rollout.metrics import RolloutMetrics

METRIC = re.compile(r"\bmodelport_[a-z_]+")


def exported_names() -> set[str]:
    """Every sample name a server's registry can show (counters as ``_total``, histograms
    as ``_bucket``/``_sum``/``_count``)."""
    registry = CollectorRegistry()
    ServingMetrics(registry)
    RolloutMetrics(registry)
    PredictionLogMetrics(registry)
    DriftMetrics(registry)
    QualityMetrics(registry)
    names = set()
    for family in registry.collect():
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
        }.get(family.type, ("",))
        names |= {family.name + suffix for suffix in suffixes}
    return names


def all_rules(thresholds: AlertThresholds = AlertThresholds()) -> list[dict[str, object]]:
    [group] = rules(thresholds)["groups"]
    rule_list: list[dict[str, object]] = group["rules"]
    return rule_list


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: str(r["alert"]))
def test_each_expression_parses_and_names_exported_metrics(rule: dict[str, object]) -> None:
    expression = str(rule["expr"])
    promql_parser.parse(expression)
    named = set(METRIC.findall(expression))
    assert named
    assert named <= exported_names(), named - exported_names()


def test_thresholds_reach_the_expressions_and_yaml_round_trips() -> None:
    custom = AlertThresholds(p95_ms=120, p99_ms=900, error_rate=0.002, drift_share=0.3)
    by_name = {r["alert"]: str(r["expr"]) for r in all_rules(custom)}
    assert by_name["ModelportHighP95Latency"].endswith("> 0.12")
    assert by_name["ModelportHighP99Latency"].endswith("> 0.9")
    assert by_name["ModelportHighErrorRate"].endswith("> 0.002")
    assert by_name["ModelportDatasetDrift"].endswith("> 0.3")
    text = yaml.safe_dump(rules(custom))
    assert yaml.safe_load(text) == rules(custom)
    assert len({r["alert"] for r in all_rules()}) == len(all_rules())


def test_a_typo_in_an_expression_would_be_caught() -> None:
    with pytest.raises(ValueError, match="parenthesis"):
        promql_parser.parse("sum(rate(modelport_requests_total[5m])")
    assert "modelport_request_total" not in exported_names()  # a misspelt name is caught
    assert "modelport_requests_total" in exported_names()
