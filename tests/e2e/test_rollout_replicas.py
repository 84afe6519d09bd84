"""Two `modelport serve` replicas sharing PostgreSQL: they converge on every deployment change,
and their two rollout controllers step a canary once, never twice."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import create_engine, text

import modelport
from modelport.config import Settings
from tests.e2e.conftest import LiveServer
from tests.e2e.doubles import Doubled, Scaled
from tests.e2e.test_database_outage import drop_connections
from tests.e2e.test_rollouts import SAMPLE, Cli, apply, deployment
from tests.e2e.traffic import Load

pytestmark = pytest.mark.postgres


@pytest.fixture
def shared(make_settings: Callable[..., Settings], postgres_url: str) -> Settings:
    settings = make_settings(database_url=postgres_url)
    for model in (Scaled(), Doubled()):
        modelport.log_model(model, "m", SAMPLE, settings=settings)
    return settings


RAMP = deployment(
    "ramp",
    "canary",
    "    - {model: m/1, role: primary}\n    - {model: m/2, role: canary}\n",
    "  steps: [10, 50, 100]\n  stepInterval: 2s\n  minRequests: 20\n"
    "  evaluationInterval: 1s\n  gates:\n    maxErrorRate: 0.05\n",
)
"""A quick canary ramp: three steps of two seconds each."""


@pytest.fixture
def run(shared: Settings, cli: Callable[..., Any]) -> Cli:
    """The CLI against the replicas' shared PostgreSQL registry."""
    return lambda *args, **kw: cli(*args, settings_override=shared, **kw)


def served_revision(server: LiveServer, name: str) -> int | None:
    deployments: list[dict[str, Any]] = httpx.get(f"{server.url}/api/serving").json()["deployments"]
    return next((d["revision"] for d in deployments if d["name"] == name), None)


def converged_after(replicas: list[LiveServer], name: str, revision: int) -> float:
    started = time.monotonic()
    while time.monotonic() - started < 20:
        if all(served_revision(r, name) == revision for r in replicas):
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"replicas did not converge on revision {revision} of {name}")


def split(primary: int) -> str:
    slots = (
        f"    - {{model: m/1, role: primary, weight: {primary}}}\n"
        f"    - {{model: m/2, role: canary, weight: {100 - primary}}}\n"
    )
    return deployment("shared", "direct", slots)


def test_replicas_converge_and_one_controller_steps(
    shared: Settings,
    run: Cli,
    live_server: Callable[..., LiveServer],
    loads: Callable[[str], Load],
) -> None:
    apply(run, split(100))
    replicas = [live_server([], shared), live_server([], shared)]
    assert [served_revision(r, "shared") for r in replicas] == [1, 1]

    apply(run, split(0))  # every request to version 2 from now on
    took = converged_after(replicas, "shared", 2)
    for replica in replicas:
        answer = httpx.post(
            f"{replica.url}/v1/models/shared:predict", json={"instances": [[1, 1, 1]]}
        )
        assert answer.headers["x-model-version"] == "2"
    print(f"replicas converged {took:.2f} s after the change")

    apply(run, RAMP)
    converged_after(replicas, "ramp", 1)
    busy = [loads(f"{r.url}/v1/models/ramp:predict") for r in replicas]
    deadline = time.monotonic() + 60
    while httpx.get(f"{replicas[0].url}/api/deployments/ramp").json()["state"]["phase"] != (
        "promoted"
    ):
        assert time.monotonic() < deadline, "the canary was never promoted"
        time.sleep(0.3)
    for load in busy:
        load.stop()
    events = httpx.get(f"{replicas[1].url}/api/deployments/ramp/history").json()["events"]
    steps = [e["action"] for e in events[::-1] if e["action"] in ("step", "promote")]
    assert steps == ["step", "step", "promote"]  # each once, although two controllers run
    assert not [f for load in busy for f in load.failures()]
    # both replicas took part: each served both slots
    for load in busy:
        assert {a.slot for a in load.answers} == {"primary", "canary"}
    assert np.isfinite([a.value for load in busy for a in load.answers]).all()


def test_a_replica_cut_off_from_the_database_keeps_serving_its_last_state(
    shared: Settings,
    run: Cli,
    live_server: Callable[..., LiveServer],
    loads: Callable[[str], Load],
    postgres_url: str,
) -> None:
    apply(run, split(50))
    replica = live_server([], shared)
    load = loads(f"{replica.url}/v1/models/shared:predict")
    database = postgres_url.rsplit("/", 1)[1]
    killed = 0
    for _ in range(10):  # every connection the replica holds, again and again
        time.sleep(0.3)
        killed += drop_connections(database)
    assert killed > 0, "the replica held no connection to drop"
    apply(run, split(0))  # and it still hears of changes once the database answers
    converged_after([replica], "shared", 2)
    load.stop()
    assert len(load.answers) > 100
    assert load.failures() == []


def test_when_the_controlling_replica_dies_another_takes_over(
    shared: Settings,
    run: Cli,
    live_server: Callable[..., LiveServer],
    loads: Callable[[str], Load],
) -> None:
    replicas = [live_server([], shared), live_server([], shared)]
    apply(run, RAMP)
    converged_after(replicas, "ramp", 1)
    holder = lease_holder(shared)
    victim = next(r for r in replicas if f":{r.process.pid}:" in holder)
    survivor = next(r for r in replicas if r is not victim)
    victim.process.kill()  # no graceful hand-over: the lease has to expire
    victim.process.wait()
    load = loads(f"{survivor.url}/v1/models/ramp:predict")
    deadline = time.monotonic() + 90
    while httpx.get(f"{survivor.url}/api/deployments/ramp").json()["state"]["phase"] != (
        "promoted"
    ):
        assert time.monotonic() < deadline, "the survivor never took the rollout over"
        time.sleep(0.3)
    load.stop()
    assert load.failures() == []
    events = httpx.get(f"{survivor.url}/api/deployments/ramp/history").json()["events"]
    steps = [e for e in events[::-1] if e["action"] in ("step", "promote")]
    assert [e["action"] for e in steps] == ["step", "step", "promote"]
    assert f":{survivor.process.pid}:" in steps[-1]["actor"]


def lease_holder(settings: Settings) -> str:
    """The replica holding the controller lease (its id names host, pid and a tag)."""
    engine = create_engine(settings.resolved_database_url)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                holder = connection.execute(text("SELECT holder FROM leases")).scalar()
            if holder:
                return str(holder)
            time.sleep(0.2)
        raise AssertionError("no replica took the controller lease")
    finally:
        engine.dispose()
