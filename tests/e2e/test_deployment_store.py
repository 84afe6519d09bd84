"""Deployments, their history, samples, heartbeats and the controller lease, on SQLite and
PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings
from modelport.errors import ConflictError, ModelVersionNotFoundError, NotFoundError
from modelport.registry import Registry
from modelport.registry.audit import Actor
from modelport.rollout.spec import parse_document
from modelport.rollout.state import Action, Phase, advanced, paused, rolled_back, switched
from modelport.rollout.status import describe
from modelport.rollout.store import DeploymentStore
from modelport.rollout.telemetry import Sample, Telemetry
from modelport.rollout.window import SlotWindow
from modelport.store.tables import utcnow


@pytest.fixture
def registry(
    backend: Settings, iris_logreg: LogisticRegression, iris_data: tuple[np.ndarray, Any]
) -> Iterator[Registry]:
    for _ in range(2):
        modelport.log_model(iris_logreg, "iris", iris_data[0][:5], settings=backend)
    reg = Registry.from_settings(backend)
    yield reg
    reg.close()


def document(strategy: str = "canary", canary: str = "iris/2", **spec: Any) -> dict[str, Any]:
    slots = [{"model": "iris/1", "role": "primary"}, {"model": canary, "role": "canary"}]
    return {
        "apiVersion": "modelport/v1",
        "kind": "ModelDeployment",
        "metadata": {"name": "fraud"},
        "spec": {"strategy": strategy, "slots": slots, **spec},
    }


def test_apply_creates_then_changes_only_what_differs(registry: Registry) -> None:
    store = DeploymentStore(registry)
    created, changed = store.apply(parse_document(document(steps=[10, 100])))
    assert changed
    assert (created.revision, created.state.phase, created.state.weights) == (
        1,
        Phase.PROGRESSING,
        {"primary": 90, "canary": 10},
    )
    again, changed = store.apply(parse_document(document(steps=[10, 100])))
    assert not changed
    assert again.revision == 1

    stepped = store.transition("fraud", Action.STEP, advanced, reason="good")
    assert stepped is not None
    assert stepped.state.weights == {"primary": 0, "canary": 100}
    # new gates leave the rollout where it is; new steps start it again
    gated = store.apply(parse_document(document(steps=[10, 100], gates={"maxErrorRate": 0.1})))
    assert gated[0].state == stepped.state
    restarted, _ = store.apply(parse_document(document(steps=[20, 100])))
    assert restarted.state.weights == {"primary": 80, "canary": 20}
    assert restarted.state.epoch > stepped.state.epoch

    actions = [(e.action, e.revision) for e in store.history("fraud")]
    assert actions == [("apply", 4), ("apply", 3), ("step", 2), ("apply", 1)]
    audited = [e.action for e in registry.audit.entries(limit=100)]
    assert audited.count("deployment.apply") == 3
    assert registry.audit.verify().ok


def test_a_decision_on_an_old_epoch_is_dropped(registry: Registry) -> None:
    store = DeploymentStore(registry)
    deployment, _ = store.apply(parse_document(document()))
    epoch = deployment.state.epoch
    store.transition("fraud", Action.PAUSE, paused, reason="operator", actor=Actor("key:abc"))
    store.transition("fraud", Action.ROLLBACK, rolled_back, reason="operator")
    late = store.transition(
        "fraud", Action.STEP, advanced, reason="controller", epoch=epoch
    )  # the controller looked before the operator acted
    assert late is None
    assert store.get("fraud").state.phase is Phase.ROLLED_BACK
    assert store.history("fraud")[1].actor == "key:abc"


def test_refusals_name_the_problem(registry: Registry) -> None:
    store = DeploymentStore(registry)
    with pytest.raises(ModelVersionNotFoundError, match=r"spec\.slots\[1\]\.model"):
        store.apply(parse_document(document(canary="iris/9")))
    with pytest.raises(NotFoundError):
        store.get("fraud")
    with pytest.raises(NotFoundError):
        store.history("fraud")
    store.apply(parse_document(document()))
    with pytest.raises(ConflictError, match="only blue-green switches"):
        store.transition("fraud", Action.SWITCH, switched, reason="x")
    store.delete("fraud")
    assert store.revisions() == {}
    assert [e.action for e in store.history("fraud")][:1] == ["delete"]


def test_one_lease_holder_at_a_time(registry: Registry) -> None:
    first, second = Telemetry(registry.database, "a"), Telemetry(registry.database, "b")
    assert first.hold_lease(timedelta(seconds=30))
    assert not second.hold_lease(timedelta(seconds=30))
    assert first.hold_lease(timedelta(seconds=30))  # renewing
    first.leave()  # a graceful stop hands it over at once
    assert second.hold_lease(timedelta(seconds=30))
    assert not first.hold_lease(timedelta(seconds=30))
    assert second.hold_lease(timedelta(seconds=-1))  # an expired lease is anyone's
    assert first.hold_lease(timedelta(seconds=30))


def test_status_sums_every_replica_and_lists_live_ones(registry: Registry) -> None:
    store = DeploymentStore(registry)
    deployment, _ = store.apply(parse_document(document()))
    epoch = deployment.state.epoch
    for replica, errors in (("a", 1), ("b", 3)):
        window = SlotWindow()
        for status in [500] * errors + [200] * (10 - errors):
            window.served(status, 0.002, None)
        telemetry = Telemetry(registry.database, replica)
        telemetry.write_samples([Sample("fraud", epoch, "canary", dict(window.to_json()))])
        telemetry.write_samples([Sample("fraud", epoch + 1, "canary", dict(window.to_json()))])
        served = {"name": "fraud", "revision": 1, "slots": []}
        telemetry.heartbeat({"deployments": [served]})
    status = describe(store.get("fraud"), Telemetry(registry.database, "cli"), utcnow())
    assert status["figures"]["canary"]["requests"] == 20  # the other epoch does not count
    assert status["figures"]["canary"]["error_rate"] == pytest.approx(0.2)
    assert [r["replica"] for r in status["replicas"]] == ["a", "b"]
    assert status["converged"]
    Telemetry(registry.database, "x").prune(timedelta(seconds=-1))
    assert (
        describe(store.get("fraud"), Telemetry(registry.database, "cli"), utcnow())["figures"] == {}
    )
