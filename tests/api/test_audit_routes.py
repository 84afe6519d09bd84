"""Every route that changes state writes exactly one audit entry naming the caller's key;
a change that fails writes none."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from starlette.testclient import TestClient

from modelport.config import AuthMode, Settings
from modelport.experiments.spec import parse_document as experiment_document
from modelport.experiments.store import ExperimentStore
from modelport.registry import Registry
from modelport.rollout.spec import parse_document
from modelport.rollout.store import DeploymentStore
from modelport.security.keys import KeyHasher, KeyStore, Scope
from modelport.security.secret import server_secret
from tests.api.conftest import serving

Call = Callable[[TestClient, dict[str, str]], Any]


def _upload(model: bytes, sample: str) -> Call:
    def call(client: TestClient, headers: dict[str, str]) -> Any:
        return client.post(
            "/api/models/iris/versions",
            files={"artifact": ("model.skops", io.BytesIO(model))},
            data={"sample": sample},
            headers=headers,
        )

    return call


def _deployment(name: str, strategy: str, canary: str) -> dict[str, Any]:
    slots = [{"model": "iris/1", "role": "primary"}, {"model": canary, "role": "canary"}]
    return {
        "apiVersion": "modelport/v1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"strategy": strategy, "slots": slots},
    }


def _operation(action: str, works_on: str) -> tuple[Call, Call, str]:
    """An operator's transition: on ``works_on``, then on a deployment that is not there."""
    path = "/api/deployments/{}/" + action
    return (
        lambda c, h: c.post(path.format(works_on), json={"reason": "test"}, headers=h),
        lambda c, h: c.post(path.format("nothing"), headers=h),
        f"deployment.{action}",
    )


def _deployment_calls() -> dict[tuple[str, str], tuple[Call, Call, str]]:
    """In order: apply a canary, steer it through every transition, delete it (the blue-green
    deployment ``bg`` exists beforehand, for the switch)."""
    one = "/api/deployments/{name}"
    return {
        ("post", "/api/deployments"): (
            lambda c, h: c.post(
                "/api/deployments", json=_deployment("d", "canary", "iris/1"), headers=h
            ),
            lambda c, h: c.post(
                "/api/deployments", json=_deployment("d", "canary", "iris/9"), headers=h
            ),
            "deployment.apply",
        ),
        **{
            ("post", f"{one}/{action}"): _operation(action, "d")
            for action in ("pause", "resume", "promote", "rollback", "abort")
        },
        ("post", f"{one}/switch"): _operation("switch", "bg"),
        ("delete", one): (
            lambda c, h: c.delete("/api/deployments/d", headers=h),
            lambda c, h: c.delete("/api/deployments/nothing", headers=h),
            "deployment.delete",
        ),
    }


def _direct(name: str) -> dict[str, Any]:
    slots = [
        {"model": "iris/1", "role": "primary", "weight": 50},
        {"model": "iris/1", "role": "canary", "weight": 50},
    ]
    return {
        "apiVersion": "modelport/v1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"strategy": "direct", "slots": slots},
    }


def _experiment(name: str, deployment: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelport/v1",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {"deployment": deployment, "primaryMetric": {"name": "y", "type": "binary"}},
    }


MOVES_TRAFFIC = "deployment.experiment"
"""What an experiment's start, stop or promotion also does to its deployment (audited too)."""


def _experiment_calls() -> dict[tuple[str, str], tuple[Call, Call, str | tuple[str, ...]]]:
    """Apply, start and stop experiment ``e`` on deployment ``ab``, then delete it; promote
    ``p``, started on ``ab2`` beforehand."""
    one = "/api/experiments/{name}"
    calls: dict[tuple[str, str], tuple[Call, Call, str | tuple[str, ...]]] = {
        ("post", "/api/experiments"): (
            lambda c, h: c.post("/api/experiments", json=_experiment("e", "ab"), headers=h),
            lambda c, h: c.post("/api/experiments", json=_experiment("e", "zz"), headers=h),
            "experiment.apply",
        )
    }
    for action in ("start", "stop"):
        path = one.format(name="{}") + "/" + action
        calls["post", f"{one}/{action}"] = (
            lambda c, h, path=path: c.post(path.format("e"), json={"reason": "t"}, headers=h),
            lambda c, h, path=path: c.post(path.format("nothing"), headers=h),
            (f"experiment.{action}", MOVES_TRAFFIC),
        )
    calls["post", f"{one}/promote"] = (
        lambda c, h: c.post("/api/experiments/p/promote", json={"variant": "canary"}, headers=h),
        lambda c, h: c.post("/api/experiments/p/promote", json={"variant": "blue"}, headers=h),
        ("experiment.promote", MOVES_TRAFFIC),
    )
    calls["delete", one] = (
        lambda c, h: c.delete("/api/experiments/e", headers=h),
        lambda c, h: c.delete("/api/experiments/nothing", headers=h),
        "experiment.delete",
    )
    return calls


def _calls(
    model: bytes, spare_key: str
) -> dict[tuple[str, str], tuple[Call, Call, str | tuple[str, ...]]]:
    """Per mutating operation: a call that succeeds, one that fails, the audited action."""
    stage = "/api/models/{name}/versions/{version}/stage"
    alias = "/api/models/{name}/aliases/{alias}"
    return {
        ("post", "/api/models/{name}/versions"): (
            _upload(model, "[[5.1, 3.5, 1.4, 0.2]]"),
            _upload(model, "[[1.0, 2.0]]"),  # the sample does not fit the model
            "model.register",
        ),
        ("post", stage): (
            lambda c, h: c.post(
                stage.format(name="iris", version=1), json={"stage": "Staging"}, headers=h
            ),
            lambda c, h: c.post(
                stage.format(name="iris", version=9), json={"stage": "Staging"}, headers=h
            ),
            "version.stage",
        ),
        ("put", alias): (
            lambda c, h: c.put(
                alias.format(name="iris", alias="production"), json={"version": 1}, headers=h
            ),
            lambda c, h: c.put(
                alias.format(name="iris", alias="production"), json={"version": 9}, headers=h
            ),
            "alias.set",
        ),
        ("delete", alias): (
            lambda c, h: c.delete(alias.format(name="iris", alias="production"), headers=h),
            lambda c, h: c.delete(alias.format(name="iris", alias="nothing"), headers=h),
            "alias.delete",
        ),
        ("put", "/api/models/{name}/versions/{version}/card"): (
            lambda c, h: c.put(
                "/api/models/iris/versions/1/card", json={"limitations": "iris only"}, headers=h
            ),
            lambda c, h: c.put(
                "/api/models/iris/versions/9/card", json={"limitations": "iris only"}, headers=h
            ),
            "version.card",
        ),
        ("post", "/api/keys"): (
            lambda c, h: c.post("/api/keys", json={"scope": "read"}, headers=h),
            lambda c, h: c.post(
                "/api/keys", json={"scope": "read", "rate_limit": "soon"}, headers=h
            ),
            "key.create",
        ),
        ("post", "/api/keys/{key_id}/rotate"): (
            lambda c, h: c.post(f"/api/keys/{spare_key}/rotate", json={"grace": "1h"}, headers=h),
            lambda c, h: c.post("/api/keys/0123456789ab/rotate", json={}, headers=h),
            "key.rotate",
        ),
        ("delete", "/api/keys/{key_id}"): (
            lambda c, h: c.delete(f"/api/keys/{spare_key}", headers=h),
            lambda c, h: c.delete("/api/keys/0123456789ab", headers=h),
            "key.revoke",
        ),
        **_deployment_calls(),
        **_experiment_calls(),
    }


def test_every_change_is_audited_once_and_a_failed_one_not_at_all(
    settings: Settings,
    registry: Registry,
    iris_served: np.ndarray,
    iris_logreg: LogisticRegression,
    tmp_path: Path,
) -> None:
    secured = settings.model_copy(update={"auth": AuthMode.REQUIRED})
    store = KeyStore(registry.database, KeyHasher(lambda: server_secret(secured)))
    admin = store.create(Scope.ADMIN)
    spare = store.create(Scope.READ).key.id
    path = tmp_path / "model.skops"
    sio.dump(iris_logreg, path)
    calls = _calls(path.read_bytes(), spare)
    headers = {"Authorization": f"Bearer {admin.token}"}
    with serving(secured, ["iris"]) as client:
        deployments = DeploymentStore(registry)
        deployments.apply(parse_document(_deployment("bg", "blue-green", "iris/1")))
        for name in ("ab", "ab2"):
            deployments.apply(parse_document(_direct(name)))
        experiments = ExperimentStore(registry)
        experiments.apply(experiment_document(_experiment("p", "ab2")))
        experiments.start("p")
        paths = client.get("/openapi.json").json()["paths"]
        mutating = {
            (method, path)
            for path, operations in paths.items()
            if path.startswith("/api/")
            for method in operations
            if method not in ("get", "head", "options")
        }
        assert mutating == set(calls), "a new route that changes state needs an audit test"
        for (method, route), (succeeds, fails, action) in calls.items():
            before = registry.audit.entries(limit=1000)
            failed = fails(client, headers)
            assert failed.status_code >= 400, (route, failed.text)
            assert registry.audit.entries(limit=1000) == before, (route, "failed but audited")
            done = succeeds(client, headers)
            assert done.status_code < 300, (method, route, done.text)
            added = registry.audit.entries(limit=1000)[len(before) :]
            expected = [action] if isinstance(action, str) else list(action)
            assert [e.action for e in added] == expected, (route, added)
            assert added[0].actor == f"key:{admin.key.id}"
            assert added[0].key_id == admin.key.id
            assert added[0].request_id == done.headers["x-request-id"]
    assert registry.audit.verify().ok
