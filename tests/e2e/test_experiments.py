"""An A/B experiment run for real: two `modelport serve` replicas sharing PostgreSQL, driven by
`modelport apply` and `modelport experiments …`. Both replicas put a unit in the same variant,
the controller (one of the two, by lease) ramps the experiment, the report reads the outcomes
clients posted, and a promotion moves the alias."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest

import modelport
from modelport.config import Settings
from modelport.registry import Registry
from tests.e2e.conftest import LiveServer
from tests.e2e.doubles import Doubled, Scaled
from tests.e2e.test_rollouts import SAMPLE, Cli

pytestmark = pytest.mark.postgres

MANIFEST = """\
apiVersion: modelport/v1
kind: ModelDeployment
metadata:
  name: shop
spec:
  strategy: direct
  slots:
    - {model: m@production, role: primary, weight: 50}
    - {model: m/2, role: canary, weight: 50}
---
apiVersion: modelport/v1
kind: Experiment
metadata:
  name: shop-v2
spec:
  deployment: shop
  primaryMetric: {name: bought, type: binary, mde: 0.1}
  guardrails:
    - {name: returns, type: numeric, better: lower}
  sampleSize: 150
  ramp: {steps: [20, 100], interval: 1s, minUnits: 5}
  evaluationInterval: 1s
"""


@pytest.fixture
def shared(make_settings: Callable[..., Settings], postgres_url: str) -> Settings:
    settings = make_settings(database_url=postgres_url)
    for model in (Scaled(), Doubled()):
        modelport.log_model(model, "m", SAMPLE, settings=settings)
    registry = Registry.from_settings(settings)
    registry.set_alias("m", "production", 1)
    registry.close()
    return settings


@pytest.fixture
def run(shared: Settings, cli: Callable[..., Any]) -> Cli:
    return lambda *args, **kw: cli(*args, settings_override=shared, **kw)


def ok(result: Any) -> str:
    assert result.returncode == 0, result.stderr
    out: str = result.stdout
    return out


def allocation(server: LiveServer) -> dict[str, Any] | None:
    deployments = httpx.get(f"{server.url}/api/serving", timeout=10).json()["deployments"]
    found: dict[str, Any] | None = next(d for d in deployments if d["name"] == "shop")["experiment"]
    return found


def wait_for_share(replicas: list[LiveServer], share: float | None, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        shares = [(allocation(r) or {}).get("share") for r in replicas]
        if shares == [share] * len(replicas):
            return
        time.sleep(0.1)
    raise AssertionError(f"replicas route at {shares}, not {share}")


def slot_of(server: LiveServer, unit: str) -> str:
    answer = httpx.post(
        f"{server.url}/v1/models/shop:predict",
        json={"instances": [[0.1, 0.2, 0.3]]},
        headers={"X-Unit-Id": unit},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.headers["x-deployment-slot"]


def test_two_replicas_run_one_experiment_from_ramp_to_promotion(
    shared: Settings, run: Cli, live_server: Callable[..., LiveServer]
) -> None:
    applied = ok(run("apply", "-f", "-", input=MANIFEST))
    assert "deployment/shop created" in applied
    assert "experiment/shop-v2 created" in applied
    replicas = [live_server([], shared) for _ in range(2)]
    assert "20 % of units enrolled" in ok(run("experiments", "start", "shop-v2"))
    wait_for_share(replicas, 20)

    # the controller ramps to 100 % once each variant enrolled 5 units in the first step
    units = [f"user-{i}" for i in range(200)]
    for i, unit in enumerate(units[:100]):
        slot_of(replicas[i % 2], unit)
    wait_for_share(replicas, 100)
    # both replicas agree on every unit's variant
    seen = {unit: {slot_of(r, unit) for r in replicas} for unit in units}
    assert all(len(slots) == 1 for slots in seen.values()), "replicas disagree on a unit"
    variant = {unit: slots.pop() for unit, slots in seen.items()}
    assert Counter(variant.values()).keys() == {"primary", "canary"}

    rng = np.random.default_rng(3)
    events = [
        {
            "metric": "bought",
            "unit_id": u,
            "value": int(rng.random() < (0.7 if v == "canary" else 0.3)),
        }
        for u, v in variant.items()
    ] + [{"metric": "returns", "unit_id": u, "value": float(rng.integers(0, 2))} for u in units]
    stored = httpx.post(f"{replicas[1].url}/v1/events", json={"events": events}, timeout=10)
    assert stored.json() == {"accepted": len(events)}

    deadline = time.monotonic() + 20
    while True:  # exposures are written off the request path, by both replicas
        report = json.loads(ok(run("experiments", "report", "shop-v2", "--json")))
        if sum(v["units"] for v in report["variants"]) == len(units) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert {v["name"]: v["units"] for v in report["variants"]} == dict(Counter(variant.values()))
    assert report["srm"]["mismatch"] is False
    assert report["units_by_step"].keys() == {"0", "1"}
    bought = report["metrics"][0]["variants"][0]
    assert bought["verdict"] == "better", bought
    assert report["guardrail_breaches"] == []
    table = ok(run("experiments", "report", "shop-v2"))
    assert "better" in table
    assert "sample ratio" in table

    promoted = ok(run("experiments", "promote", "shop-v2", "canary", "--reason", "won"))
    assert "m@production -> version 2" in promoted
    registry = Registry.from_settings(shared)
    assert registry.resolve("m@production").version == 2
    registry.close()
    wait_for_share(replicas, None)  # no experiment: everyone on the winner
    assert {slot_of(r, unit) for r in replicas for unit in units[:20]} == {"canary"}
    history = json.loads(ok(run("experiments", "history", "shop-v2", "--json")))["events"]
    actions = [e["action"] for e in history]
    assert actions[0] == "promote"
    assert actions.count("ramp") == 1
    ramp = next(e for e in history if e["action"] == "ramp")
    assert ramp["actor"].startswith("controller:")
    listed = ok(run("experiments", "list"))
    assert "concluded" in listed
