"""``/api/experiments`` and ``/v1/events`` in-process: an A/B test enrols units stickily and
by plan, joins outcomes to exposures, reports, stops on a guardrail, promotes a winner; and
every wrong move is refused with a clear 4xx."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sqlalchemy import select
from starlette.testclient import TestClient

import modelport
from modelport.config import Settings
from modelport.experiments.controller import ExperimentController
from modelport.experiments.store import ExperimentStore
from modelport.registry import Registry
from modelport.store.leases import Leases
from modelport.store.tables import ExposureRow, utcnow
from tests.api.conftest import serving


def deployment(
    name: str = "ab", primary: str = "iris/1", weights: tuple[int, int] = (50, 50)
) -> dict[str, Any]:
    return {
        "apiVersion": "modelport/v1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "strategy": "direct",
            "slots": [
                {"model": primary, "role": "primary", "weight": weights[0]},
                {"model": "iris/2", "role": "canary", "weight": weights[1]},
            ],
        },
    }


def experiment(name: str = "ab-test", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "deployment": "ab",
        "primaryMetric": {"name": "converted", "type": "binary", "mde": 0.2},
        "guardrails": [{"name": "refunds", "type": "numeric", "better": "lower"}],
        "sampleSize": 100,
        "ramp": {"steps": [30, 100], "interval": "1s", "minUnits": 5},
    }
    return {
        "apiVersion": "modelport/v1",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": body | spec,
    }


@pytest.fixture
def two_irises(
    settings: Settings, iris_logreg: LogisticRegression, iris_data: tuple[np.ndarray, Any]
) -> Settings:
    for _ in range(2):
        modelport.log_model(iris_logreg, "iris", iris_data[0][:10], settings=settings)
    return settings.model_copy(
        update={"all_deployments": True, "deployment_poll_s": 0.1, "allow_remote_admin": True}
    )


ROW = {"instances": [[5.1, 3.5, 1.4, 0.2]]}


def ask(client: TestClient, unit: str) -> str:
    answer = client.post("/v1/models/ab:predict", json=ROW, headers={"X-Unit-Id": unit})
    assert answer.status_code == 200, answer.text
    return answer.headers["x-deployment-slot"]


def routing(client: TestClient, share: float | None) -> None:
    """Wait until this replica routes by the experiment at ``share`` (None: by none)."""
    deadline = time.monotonic() + 10
    served: dict[str, Any] = {}
    while time.monotonic() < deadline:
        served = {d["name"]: d for d in client.get("/api/serving").json()["deployments"]}
        ab = served.get("ab", {"slots": [], "experiment": None})
        allocation = ab["experiment"]
        loaded = ab["slots"] and all(slot["state"] == "ready" for slot in ab["slots"])
        if loaded and (allocation and allocation["share"]) == share:
            return
        time.sleep(0.05)
    raise AssertionError(f"not routing at {share}: {served}")


def exposures(settings: Settings, name: str = "ab-test") -> dict[str, str]:
    """Every unit written as exposed so far (waits for the observer's queue to drain)."""
    registry = Registry.from_settings(settings)
    try:
        previous, deadline = -1, time.monotonic() + 10
        while time.monotonic() < deadline:
            with registry.database.read() as s:
                rows = s.execute(
                    select(ExposureRow.unit_id, ExposureRow.variant).where(
                        ExposureRow.experiment == name
                    )
                ).all()
            if len(rows) == previous:
                return dict(rows)
            previous = len(rows)
            time.sleep(0.5)
        raise AssertionError("exposures kept changing")
    finally:
        registry.close()


def test_units_are_enrolled_by_plan_and_keep_their_variant_through_the_ramp(
    two_irises: Settings,
) -> None:
    # a step of an hour: the server's own controller must not ramp while the first 600 units
    # are asked (a slow machine takes seconds); this test's controller is told the hour passed
    ramp = {"steps": [30, 100], "interval": "1h", "minUnits": 5}
    with serving(two_irises, []) as client:
        assert client.post("/api/deployments", json=deployment()).status_code == 201
        created = client.post("/api/experiments", json=experiment(ramp=ramp))
        assert created.status_code == 201, created.text
        assert created.json()["state"]["phase"] == "draft"
        routing(client, None)
        # a draft changes nothing: the deployment routes by its weights, nobody is enrolled
        assert {ask(client, f"u{i}") for i in range(40)} == {"primary", "canary"}

        started = client.post("/api/experiments/ab-test/start", json={"reason": "go"})
        assert started.status_code == 200, started.text
        assert started.json()["state"]["share"] == 30
        routing(client, 30)
        first = {f"u{i}": ask(client, f"u{i}") for i in range(600)}
        enrolled = exposures(two_irises)
        # 30 % of the units enrolled; everyone else met the control
        assert 0.22 < len(enrolled) / 600 < 0.38, len(enrolled)
        assert all(first[u] == "primary" for u in first if u not in enrolled)
        assert all(first[u] == v for u, v in enrolled.items())
        counts = Counter(enrolled.values())
        assert stats.chisquare([counts["primary"], counts["canary"]]).pvalue > 0.001

        # the controller ramps once the step lasted its interval with enough units
        registry = Registry.from_settings(two_irises)
        store = ExperimentStore(registry)
        controller = ExperimentController(registry, Leases(registry.database, "t"))
        assert store.get("ab-test").state.step == 0
        controller.evaluate(store.get("ab-test"), utcnow() + timedelta(minutes=59))
        assert store.get("ab-test").state.step == 0  # the step has not lasted its hour
        controller.evaluate(store.get("ab-test"), utcnow() + timedelta(hours=1, seconds=1))
        assert store.get("ab-test").state.step == 1
        routing(client, 100)
        second = {f"u{i}": ask(client, f"u{i}") for i in range(600)}
        assert all(second[u] == v for u, v in enrolled.items()), "a unit changed variant"
        everyone = exposures(two_irises)
        assert len(everyone) == 600
        counts = Counter(everyone.values())
        assert stats.chisquare([counts["primary"], counts["canary"]]).pvalue > 0.001

        # outcomes: the canary converts twice as often; an event before exposure is ignored
        rng = np.random.default_rng(7)
        converted = {
            u: int(rng.random() < (0.6 if v == "canary" else 0.3)) for u, v in everyone.items()
        }
        events = [
            {"metric": "converted", "unit_id": u, "value": c} for u, c in converted.items()
        ] + [{"metric": "refunds", "unit_id": u, "value": 1.0} for u in list(everyone)[:50]]
        early = datetime.now(UTC) - timedelta(days=1)
        events.append({"metric": "converted", "unit_id": "u0", "value": 1, "at": early.isoformat()})
        answer = client.post("/v1/events", json={"events": events})
        assert answer.json() == {"accepted": len(events)}

        report = client.get("/api/experiments/ab-test/report", params={"bootstrap": 500}).json()
        assert report["srm"]["mismatch"] is False
        assert {v["name"]: v["units"] for v in report["variants"]} == dict(counts)
        primary = report["metrics"][0]
        assert (primary["metric"], primary["role"]) == ("converted", "primary")
        control_rate = np.mean([c for u, c in converted.items() if everyone[u] == "primary"])
        assert primary["control_mean"] == pytest.approx(control_rate)
        canary = primary["variants"][0]
        assert canary["verdict"] == "better", canary
        assert canary["fixed_horizon"]["p_value"] < 1e-6
        assert canary["sequential"]["p_value"] <= canary["p_adjusted"] < 0.05
        assert canary["bootstrap"]["low"] > 0
        assert report["guardrail_breaches"] == []
        registry.close()


def test_a_guardrail_breach_stops_the_experiment_and_sends_everyone_to_the_control(
    two_irises: Settings,
) -> None:
    with serving(two_irises, []) as client:
        client.post("/api/deployments", json=deployment())
        client.post("/api/experiments", json=experiment(ramp={"steps": [100]}))
        client.post("/api/experiments/ab-test/start")
        routing(client, 100)
        for i in range(300):
            ask(client, f"u{i}")
        enrolled = exposures(two_irises)
        refunds = [
            {"metric": "refunds", "unit_id": u, "value": 5.0 if v == "canary" else 0.1 * (i % 3)}
            for i, (u, v) in enumerate(enrolled.items())
        ]
        client.post("/v1/events", json={"events": refunds})

        registry = Registry.from_settings(two_irises)
        store = ExperimentStore(registry)
        controller = ExperimentController(registry, Leases(registry.database, "t"))
        report = controller.evaluate(store.get("ab-test"), utcnow())
        (breach,) = report.breaches
        assert str(breach).startswith("canary is worse on guardrail refunds (+")
        stopped = client.get("/api/experiments/ab-test").json()
        assert stopped["state"]["phase"] == "stopped"
        assert "guardrail breached" in stopped["state"]["reason"]
        routing(client, None)
        assert {ask(client, f"u{i}") for i in range(100)} == {"primary"}
        weights = client.get("/api/deployments/ab").json()["state"]["weights"]
        assert weights == {"primary": 100, "canary": 0}
        actions = [
            e["action"] for e in client.get("/api/experiments/ab-test/history").json()["events"]
        ]
        assert actions == ["stop", "start", "apply"]
        # a stopped experiment does not start again: its units have seen the treatment
        assert client.post("/api/experiments/ab-test/start").status_code == 409
        registry.close()


def test_promoting_a_winner_moves_the_alias_and_its_traffic(two_irises: Settings) -> None:
    registry = Registry.from_settings(two_irises)
    registry.set_alias("iris", "production", 1)
    with serving(two_irises, []) as client:
        client.post("/api/deployments", json=deployment(primary="iris@production"))
        routing(client, None)
        client.post("/api/experiments", json=experiment(ramp={"steps": [100]}))
        assert (
            client.post("/api/experiments/ab-test/promote", json={"variant": "canary"}).status_code
            == 409
        )
        client.post("/api/experiments/ab-test/start")
        wrong = client.post("/api/experiments/ab-test/promote", json={"variant": "blue"})
        assert (wrong.status_code, wrong.json()["pointer"]) == (422, "/variant")
        promoted = client.post(
            "/api/experiments/ab-test/promote", json={"variant": "canary", "reason": "won"}
        )
        assert promoted.status_code == 200, promoted.text
        state = promoted.json()["state"]
        assert (state["phase"], state["winner"]) == ("concluded", "canary")
        assert "iris@production -> version 2" in state["reason"]
        assert registry.resolve("iris@production").version == 2
        assert client.get("/api/deployments/ab").json()["state"]["weights"] == {
            "primary": 0,
            "canary": 100,
        }
    registry.close()


def test_wrong_moves_are_refused(two_irises: Settings) -> None:
    with serving(two_irises, []) as client:
        missing = client.post("/api/experiments", json=experiment())
        assert missing.status_code == 404  # no deployment "ab" yet
        canary = deployment()
        canary["spec"]["strategy"] = "canary"
        for s in canary["spec"]["slots"]:
            del s["weight"]
        client.post("/api/deployments", json=canary)
        assert client.post("/api/experiments", json=experiment()).status_code == 409
        client.delete("/api/deployments/ab")

        client.post("/api/deployments", json=deployment())
        bad = experiment(ramp={"steps": [50, 20]}, control="blue")
        bad["spec"]["primaryMetric"]["covariate"] = "pre"
        refused = client.post("/api/experiments", json=bad)
        assert refused.status_code == 422
        pointers = {e["pointer"] for e in refused.json()["errors"]}
        assert pointers == {
            "/spec/ramp/steps/1",
            "/spec/ramp/steps",
            "/spec/primaryMetric/covariate",
        }
        unknown_slot = client.post("/api/experiments", json=experiment(control="blue"))
        assert (unknown_slot.status_code, unknown_slot.json()["pointer"]) == (422, "/spec/control")

        assert client.post("/api/experiments", json=experiment()).status_code == 201
        client.post("/api/experiments/ab-test/start")
        assert client.post("/api/experiments/ab-test/start").status_code == 409
        second = client.post("/api/experiments", json=experiment("other"))
        assert client.post("/api/experiments/other/start").status_code == 409, second.text
        # while it runs, the deployment's traffic and the assignment are fixed
        changed = client.post("/api/deployments", json=deployment(weights=(70, 30)))
        assert changed.status_code == 409
        assert "stop it before" in changed.json()["detail"]
        assert client.delete("/api/deployments/ab").status_code == 409
        assert client.delete("/api/experiments/ab-test").status_code == 409
        moved = client.post("/api/experiments", json=experiment(unit="session"))
        assert moved.status_code == 409
        # what leaves the assignment alone may change
        assert client.post("/api/experiments", json=experiment(sampleSize=500)).status_code == 200

        for body in (
            {"metric": "x", "value": 1},
            {"metric": "1x", "unit_id": "u", "value": 1},
            {"metric": "x", "unit_id": "u", "value": "NaN"},
            {"events": []},
        ):
            answer = client.post("/v1/events", json=body)
            assert answer.status_code == 422, body
        assert client.post("/api/experiments/ab-test/stop").status_code == 200
        assert client.delete("/api/experiments/ab-test").status_code == 200
        assert client.get("/api/experiments/ab-test").status_code == 404


def test_a_feedback_metric_scores_each_variants_answers_against_the_truth(
    two_irises: Settings,
) -> None:
    logged = two_irises.model_copy(update={"prediction_log": True, "prediction_log_flush_s": 0})
    accuracy = {"name": "accuracy", "source": "feedback", "mde": 0.3}
    with serving(logged, []) as client:
        client.post("/api/deployments", json=deployment())
        created = client.post(
            "/api/experiments",
            json=experiment(primaryMetric=accuracy, guardrails=[], ramp={"steps": [100]}),
        )
        assert created.status_code == 201, created.text
        assert created.json()["spec"]["spec"]["primaryMetric"] == {
            "name": "accuracy",
            "source": "feedback",
            "mde": 0.3,
        }
        client.post("/api/experiments/ab-test/start")
        routing(client, 100)
        truths = []
        for i in range(120):
            answer = client.post("/v1/models/ab:predict", json=ROW, headers={"X-Unit-Id": f"u{i}"})
            label = answer.json()["predictions"][0]
            # the canary is right nine times in ten, the control one time in two
            canary = answer.headers["x-deployment-slot"] == "canary"
            right = i % 10 != 0 if canary else i % 2 == 0
            truth = label if right else f"not {label}"
            truths.append({"request_id": answer.headers["x-request-id"], "truth": truth})
        deadline = time.monotonic() + 10
        while (
            len(client.get("/api/predictions", params={"limit": 1000}).json()["predictions"]) < 120
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert client.post("/v1/feedback", json={"feedback": truths}).json()["unmatched"] == 0

        report = client.get("/api/experiments/ab-test/report").json()
        metric = report["metrics"][0]
        assert (metric["metric"], metric["type"]) == ("accuracy", "numeric")
        assert 0.3 < metric["control_mean"] < 0.7
        result = metric["variants"][0]
        assert result["fixed_horizon"]["mean_b"] > 0.8
        assert result["verdict"] == "better", result
