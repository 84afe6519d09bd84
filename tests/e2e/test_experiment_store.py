"""Experiments, their exposures and outcomes on SQLite and PostgreSQL alike: the store's
transitions move the deployment's traffic in the same transaction, exposures keep each unit's
first variant even when replicas race, and the database's per-unit sums are what the report
analyses."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sqlalchemy import select

import modelport
from modelport.config import Settings
from modelport.errors import ConflictError, NotFoundError
from modelport.experiments.events import EventStore, MetricEvent
from modelport.experiments.exposures import Exposure, ExposureStore
from modelport.experiments.outcomes import Outcomes
from modelport.experiments.report import Reports
from modelport.experiments.spec import parse_document
from modelport.experiments.store import ExperimentStore, Phase
from modelport.registry import Registry
from modelport.registry.audit import Actor
from modelport.rollout.spec import parse_document as deployment_document
from modelport.rollout.store import DeploymentStore
from modelport.store.tables import ExposureRow, utcnow


@pytest.fixture
def registry(
    backend: Settings, iris_logreg: LogisticRegression, iris_data: tuple[np.ndarray, Any]
) -> Iterator[Registry]:
    for _ in range(2):
        modelport.log_model(iris_logreg, "iris", iris_data[0][:5], settings=backend)
    reg = Registry.from_settings(backend)
    slots = [
        {"model": "iris/1", "role": "primary", "weight": 50},
        {"model": "iris/2", "role": "canary", "weight": 50},
    ]
    DeploymentStore(reg).apply(
        deployment_document(
            {
                "apiVersion": "modelport/v1",
                "kind": "ModelDeployment",
                "metadata": {"name": "ab"},
                "spec": {"strategy": "direct", "slots": slots},
            }
        )
    )
    yield reg
    reg.close()


def experiment(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelport/v1",
        "kind": "Experiment",
        "metadata": {"name": "t"},
        "spec": {
            "deployment": "ab",
            "primaryMetric": {"name": "bought", "type": "binary"},
            "guardrails": [
                {"name": "spend", "type": "numeric", "covariate": "spend_before"},
                {"name": "rating", "type": "numeric", "aggregate": "mean"},
            ],
        }
        | spec,
    }


def test_transitions_move_the_deployment_with_them(registry: Registry) -> None:
    store, deployments = ExperimentStore(registry), DeploymentStore(registry)
    created, changed = store.apply(parse_document(experiment(ramp={"steps": [10, 100]})))
    assert (created.state.phase, changed) == (Phase.DRAFT, True)
    assert store.apply(parse_document(experiment(ramp={"steps": [10, 100]})))[1] is False
    assert deployments.get("ab").state.experiment is None

    store.start("t")
    allocation = deployments.get("ab").state.experiment
    assert allocation is not None
    assert (allocation.experiment, allocation.share, allocation.control) == ("t", 10, "primary")
    ramped = store.ramp("t", store.get("t").revision, actor=Actor("test"), reason="step")
    assert ramped is not None
    assert ramped.share == 100
    assert store.ramp("t", ramped.revision - 1, actor=Actor("test"), reason="stale") is None
    assert deployments.get("ab").state.experiment.share == 100  # type: ignore[union-attr]

    with pytest.raises(ConflictError):
        deployments.delete("ab")
    stopped = store.stop("t", reason="enough")
    assert stopped is not None
    assert stopped.state.phase is Phase.STOPPED
    state = deployments.get("ab").state
    assert (state.experiment, state.weights) == (None, {"primary": 100.0, "canary": 0.0})
    actions = [e.action for e in deployments.history("ab")]
    assert actions[:3] == ["experiment", "experiment", "experiment"]
    assert [e.action for e in store.history("t")] == ["stop", "ramp", "start", "apply"]
    # the split at the start is kept: a report outlives the deployment
    deployments.delete("ab")
    report = Reports(registry).report(store.get("t"))
    assert (report.control, report.weights) == ("primary", {"primary": 50, "canary": 50})
    store.delete("t")
    with pytest.raises(NotFoundError):
        store.get("t")
    assert store.history("t")[0].action == "delete"


def test_racing_replicas_keep_each_units_first_variant(registry: Registry) -> None:
    exposures = ExposureStore(registry.database)
    now = utcnow()
    batches = [
        [Exposure("t", f"u{i}", variant, 0, now) for i in range(300)]
        for variant in ("primary", "canary", "primary", "canary")
    ]
    threads = [threading.Thread(target=exposures.record, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    written = _exposures(registry)
    assert len(written) == 300  # each unit once, in the variant of whichever replica won
    assert set(written.values()) <= {"primary", "canary"}
    exposures.record([Exposure("t", unit, "other", 1, now) for unit in written])
    assert _exposures(registry) == written  # a unit keeps its first variant


def _exposures(registry: Registry) -> dict[str, str]:
    with registry.database.read() as s:
        rows = s.execute(select(ExposureRow.unit_id, ExposureRow.variant)).all()
    return {unit: variant for unit, variant in rows}


def test_the_database_sums_outcomes_per_unit_since_exposure(registry: Registry) -> None:
    ExperimentStore(registry).apply(parse_document(experiment()))
    now = utcnow()
    ExposureStore(registry.database).record(
        [
            Exposure("t", "a1", "primary", 0, now),
            Exposure("t", "a2", "primary", 0, now + timedelta(seconds=1)),
            Exposure("t", "b1", "canary", 0, now),
            Exposure("t", "b2", "canary", 1, now + timedelta(seconds=2)),
        ]
    )
    before = now - timedelta(hours=1)
    EventStore(registry.database).record(
        [
            MetricEvent("bought", 1, "a1", at=before),  # before exposure: not counted
            MetricEvent("bought", 0, "a2"),
            MetricEvent("bought", 1, "b1"),
            MetricEvent("bought", 0, "b1"),
            MetricEvent("spend", 10, "a1"),
            MetricEvent("spend", 5, "a1"),
            MetricEvent("spend", 7, "b2", at=now + timedelta(seconds=3)),
            MetricEvent("spend_before", 3, "a1", at=before),  # a covariate: any time
            MetricEvent("spend_before", 5, "b2", at=before),
            MetricEvent("rating", 4, "a1"),
            MetricEvent("rating", 2, "a1"),
            MetricEvent("rating", 5, "b1"),
        ]
    )
    spec = parse_document(experiment()).metrics
    observed = Outcomes(registry.database).observed("t", spec, per_request=False)
    assert observed.units == {"primary": 2, "canary": 2}
    assert observed.units_by_step == {0: {"primary": 2, "canary": 1}, 1: {"canary": 1}}
    bought = observed.metrics["bought"]
    assert bought["primary"].y.tolist() == [0.0, 0.0]
    assert bought["canary"].y.tolist() == [1.0, 0.0]
    spend = observed.metrics["spend"]
    assert spend["primary"].y.tolist() == [15.0, 0.0]  # in order of exposure; none: 0
    assert spend["canary"].y.tolist() == [0.0, 7.0]
    # units without a covariate get the mean of those with one (3 and 5)
    assert spend["primary"].x.tolist() == [3.0, 4.0]  # type: ignore[union-attr]
    assert spend["canary"].x.tolist() == [4.0, 5.0]  # type: ignore[union-attr]
    rating = observed.metrics["rating"]  # a mean: units without events are left out
    assert (rating["primary"].y.tolist(), rating["canary"].y.tolist()) == ([3.0], [5.0])

    report = Reports(registry).report(ExperimentStore(registry).get("t")).to_dict()
    assert report["srm"]["mismatch"] is False
    rating_result = report["metrics"][2]["variants"][0]
    assert rating_result["verdict"] == "not enough data"
    assert "needs at least 2 values" in rating_result["problem"]
