"""``/api/deployments`` and inference on deployments, in-process: validation that points at
the field, the operator's transitions and their refusals, and routing through every
protocol."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import SecretStr
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import modelport
from modelport.config import Settings
from modelport.registry import Registry
from modelport.rollout.spec import parse_document
from modelport.rollout.store import DeploymentStore
from tests.api.conftest import serving


def document(name: str, strategy: str, *slots: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelport/v1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"strategy": strategy, "slots": list(slots), **spec},
    }


def slot(model: str, role: str, weight: float | None = None) -> dict[str, Any]:
    return {"model": model, "role": role} | ({} if weight is None else {"weight": weight})


@pytest.fixture
def two_irises(
    settings: Settings, iris_logreg: LogisticRegression, iris_data: tuple[np.ndarray, Any]
) -> Settings:
    for _ in range(2):
        modelport.log_model(iris_logreg, "iris", iris_data[0][:10], settings=settings)
    return settings.model_copy(
        update={"all_deployments": True, "deployment_poll_s": 0.1, "allow_remote_admin": True}
    )


def test_apply_validates_and_reports_every_field(two_irises: Settings) -> None:
    with serving(two_irises, []) as client:
        body = document("split", "direct", slot("iris/1", "primary", 80), slot("iris/2", "canary"))
        body["spec"]["stratgy"] = "direct"
        refused = client.post("/api/deployments", json=body)
        assert refused.status_code == 422
        problem = refused.json()
        pointers = {e["pointer"]: e["message"] for e in problem["errors"]}
        assert "did you mean 'strategy'" in pointers["/spec/stratgy"]
        assert refused.headers["content-type"] == "application/problem+json"

        missing = document(
            "split", "direct", slot("iris/1", "primary"), slot("iris/7", "canary", 0)
        )
        missing["spec"]["slots"][0]["weight"] = 100
        answer = client.post("/api/deployments", json=missing)
        assert answer.status_code == 404
        assert "spec.slots[1].model" in answer.json()["detail"]
        assert client.get("/api/deployments").json() == {"deployments": []}


def test_operators_steer_a_rollout_and_wrong_moves_are_refused(two_irises: Settings) -> None:
    canary = document("fraud", "canary", slot("iris/1", "primary"), slot("iris/2", "canary"))
    with serving(two_irises, []) as client:
        created = client.post("/api/deployments", json=canary)
        assert created.status_code == 201
        assert created.json()["state"]["weights"] == {"primary": 99, "canary": 1}
        again = client.post("/api/deployments", json=canary)
        assert (again.status_code, again.json()["changed"]) == (200, False)

        assert client.post("/api/deployments/fraud/resume").status_code == 409  # not paused
        paused = client.post("/api/deployments/fraud/pause", json={"reason": "lunch"})
        assert paused.json()["state"]["phase"] == "paused"
        switch = client.post("/api/deployments/fraud/switch")
        assert switch.status_code == 409
        assert "only blue-green" in switch.json()["detail"]
        rolled = client.post("/api/deployments/fraud/rollback").json()["state"]
        assert (rolled["phase"], rolled["weights"]) == (
            "rolled-back",
            {"primary": 100, "canary": 0},
        )
        restarted = client.post("/api/deployments/fraud/resume").json()["state"]
        assert (restarted["phase"], restarted["step"]) == ("progressing", 0)
        promoted = client.post("/api/deployments/fraud/promote").json()["state"]
        assert promoted["weights"] == {"primary": 0, "canary": 100}

        history = client.get("/api/deployments/fraud/history").json()["events"]
        assert [e["action"] for e in history] == ["promote", "resume", "rollback", "pause", "apply"]
        assert history[3]["reason"] == "lunch"
        assert (
            client.get("/api/deployments/fraud/history?limit=2").json()["events"] == (history[:2])
        )
        assert client.get("/api/deployments/fraud/history?limit=-1").status_code == 422
        assert client.delete("/api/deployments/fraud").status_code == 200
        assert client.get("/api/deployments/fraud").status_code == 404
        assert client.post("/api/deployments/fraud/pause").status_code == 404


def test_a_deployment_answers_on_every_protocol_and_says_who_answered(
    two_irises: Settings,
) -> None:
    split = document("split", "direct", slot("iris/1", "primary", 50), slot("iris/2", "canary", 50))
    with serving(two_irises, []) as client:
        assert client.post("/api/deployments", json=split).status_code == 201
        row = [5.1, 3.5, 1.4, 0.2]
        deadline = time.monotonic() + 10  # this process's watcher was woken by the apply
        while not client.get("/api/serving").json()["deployments"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        v1 = client.post("/v1/models/split:predict", json={"instances": [row]})
        assert v1.status_code == 200, v1.text
        assert v1.headers["x-model-name"] == "iris"
        assert v1.headers["x-deployment-slot"] in ("primary", "canary")
        tensor = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": row}]}
        v2 = client.post("/v2/models/split/infer", json=tensor)
        assert v2.json()["model_version"] == v2.headers["x-model-version"]
        pinned = client.post("/v2/models/split/versions/2/infer", json=tensor)
        assert pinned.headers["x-deployment-slot"] == "canary"
        assert client.post("/v2/models/split/versions/3/infer", json=tensor).status_code == 404
        assert client.post("/invocations", json={"inputs": [row]}).status_code == 200
        assert client.get("/v1/models").json()["models"] == ["split"]

        units: Counter[str] = Counter()
        for unit in range(40):
            seen = {
                client.post(
                    "/v1/models/split:predict",
                    json={"instances": [row]},
                    headers={"X-Unit-Id": f"u{unit}"},
                ).headers["x-deployment-slot"]
                for _ in range(3)
            }
            assert len(seen) == 1
            units[seen.pop()] += 1
        assert set(units) == {"primary", "canary"}
        metrics = client.get("/metrics").text
        assert 'deployment="split"' in metrics
        assert (
            'modelport_deployment_slot_weight_percent{deployment="split",slot="canary"} 50.0'
            in metrics
        )


def test_sticky_by_an_input_column(
    settings: Settings, mixed_pipeline: Pipeline, mixed_frame: tuple[pd.DataFrame, Any]
) -> None:
    frame, _ = mixed_frame
    for _ in range(2):
        modelport.log_model(mixed_pipeline, "mixed", frame.head(20), settings=settings)
    sticky = document(
        "customers",
        "direct",
        slot("mixed/1", "primary", 50),
        slot("mixed/2", "canary", 50),
        sticky={"field": "city"},
    )
    served = settings.model_copy(update={"deployments": ["customers"]})
    registry = Registry.from_settings(settings)
    DeploymentStore(registry).apply(parse_document(sticky))
    registry.close()
    with serving(served, []) as client:
        records = frame.head(60).to_dict(orient="records")
        slots: dict[str, set[str]] = {}
        for record in records:
            answer = client.post("/v1/models/customers:predict", json={"instances": [record]})
            assert answer.status_code == 200, answer.text
            slots.setdefault(record["city"], set()).add(answer.headers["x-deployment-slot"])
        assert all(len(seen) == 1 for seen in slots.values()), slots


def test_a_growing_canary_keeps_the_units_it_already_had(two_irises: Settings) -> None:
    def split(canary: int) -> dict[str, Any]:
        return document(
            "grow",
            "direct",
            slot("iris/1", "primary", 100 - canary),
            slot("iris/2", "canary", canary),
        )

    def slots_of_units(client: Any, revision: int) -> dict[int, str]:
        deadline = time.monotonic() + 10
        while [d["revision"] for d in client.get("/api/serving").json()["deployments"]] != [
            revision
        ]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        return {
            unit: client.post(
                "/v1/models/grow:predict",
                json={"instances": [[5.1, 3.5, 1.4, 0.2]]},
                headers={"X-Unit-Id": f"user-{unit}"},
            ).headers["x-deployment-slot"]
            for unit in range(300)
        }

    with serving(two_irises, []) as client:
        client.post("/api/deployments", json=split(10))
        before = slots_of_units(client, 1)
        client.post("/api/deployments", json=split(30))
        after = slots_of_units(client, 2)
    moved_back = [u for u, s in before.items() if s == "canary" and after[u] != "canary"]
    assert moved_back == []
    share = sum(s == "canary" for s in after.values()) / len(after)
    assert 0.2 < share < 0.4
    assert sum(s == "canary" for s in before.values()) < sum(s == "canary" for s in after.values())


def test_with_a_job_broker_a_deployments_job_is_refused_and_a_models_accepted(
    two_irises: Settings,
) -> None:
    # no broker listens here: the model's job is kept and left to the workers' sweep
    brokered = two_irises.model_copy(
        update={"job_broker_url": SecretStr("redis://127.0.0.1:9/0"), "batch_roots": ["/data"]}
    )
    split = document("split", "direct", slot("iris/1", "primary", 50), slot("iris/2", "canary", 50))
    with serving(brokered, ["iris"]) as client:
        assert client.post("/api/deployments", json=split).status_code == 201
        deadline = time.monotonic() + 10
        while not client.get("/api/serving").json()["deployments"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        body = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
        refused = client.post("/v1/models/split/jobs", json=body)
        assert refused.status_code == 409, refused.text
        assert "split is a deployment" in refused.json()["detail"]
        files = {"input": "/data/in", "output": "/data/out"}
        assert client.post("/v1/models/split/batch-jobs", json=files).status_code == 409
        accepted = client.post("/v1/models/iris/jobs", json=body)
        assert accepted.status_code == 202, accepted.text
        assert client.get(accepted.headers["location"]).json()["state"] == "queued"
