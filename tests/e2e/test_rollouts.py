"""Deployments served for real: weighted and sticky routing, canary ramps, automatic rollback,
shadow traffic and blue-green switches, through `modelport apply` and `modelport serve`."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from scipy import stats

import modelport
from modelport.config import Settings
from tests.e2e.conftest import LiveServer
from tests.e2e.doubles import Crashing, Delayed, Doubled, Flaky, Scaled
from tests.e2e.traffic import Load, body, send

Cli = Callable[..., subprocess.CompletedProcess[str]]
SAMPLE = np.full((2, 3), 0.123)
"""Registration runs the sample through each model: none of the doubles fails on it."""


@pytest.fixture
def versions(settings: Settings) -> Settings:
    """``m``: v1 sums its inputs, v2 doubles the sum, v3 fails on one input in five, v4 is
    50 ms slow, v5 crashes on anything but its sample."""
    for model in (Scaled(), Doubled(), Flaky(), Delayed(), Crashing()):
        sample = np.full((2, 3), 0.5) if isinstance(model, Crashing) else SAMPLE
        modelport.log_model(model, "m", sample, settings=settings)
    return settings


def apply(cli: Cli, document: str) -> str:
    result = cli("apply", "-f", "-", input=document)
    assert result.returncode == 0, result.stderr
    return result.stdout


def deployment(name: str, strategy: str, slots: str, extra: str = "") -> str:
    return (
        f"apiVersion: modelport/v1\nkind: ModelDeployment\nmetadata:\n  name: {name}\n"
        f"spec:\n  strategy: {strategy}\n  slots:\n{slots}{extra}"
    )


def status(server: LiveServer, name: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/api/deployments/{name}/status", timeout=10)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def wait_for_phase(server: LiveServer, name: str, phase: str, timeout_s: float = 60) -> float:
    """Seconds until the deployment reaches ``phase``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if status(server, name)["state"]["phase"] == phase:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"{name} not {phase} after {timeout_s} s: {status(server, name)}")


def history(server: LiveServer, name: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = httpx.get(
        f"{server.url}/api/deployments/{name}/history", timeout=10
    ).json()["events"]
    return events[::-1]


# -- routing -----------------------------------------------------------------------------


def test_split_follows_the_weights_and_units_stick(
    versions: Settings, cli: Cli, live_server: Callable[..., LiveServer]
) -> None:
    slots = (
        "    - {model: m/1, role: primary, weight: 70}\n"
        "    - {model: m/2, role: canary, weight: 30}\n"
    )
    assert "deployment/split created" in apply(cli, deployment("split", "direct", slots))
    server = live_server([], versions)  # no model named: every deployment
    rng = np.random.default_rng(1)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        answers = [send(client, "/v1/models/split:predict", body(rng), {}) for _ in range(2000)]
        counts = Counter(a.slot for a in answers)
        assert {a.status for a in answers} == {200}
        assert set(counts) == {"primary", "canary"}
        chi = stats.chisquare([counts["primary"], counts["canary"]], [1400, 600])
        assert chi.pvalue > 0.001, counts
        # the version header tells which model answered, and the answer agrees with it
        assert all((a.version == "2") == (a.slot == "canary") for a in answers)

        by_unit = {}
        for unit in range(200):
            headers = {"X-Unit-Id": f"user-{unit}"}
            seen = {
                send(client, "/v1/models/split:predict", body(rng), headers).slot for _ in range(3)
            }
            assert len(seen) == 1, f"user-{unit} saw {seen}"
            by_unit[unit] = seen.pop()
        assert 0.15 < sum(s == "canary" for s in by_unit.values()) / 200 < 0.45

        # V2 names the served version in its body; MLflow's /invocations reaches the
        # deployment when it is the only thing served
        v2 = client.post(
            "/v2/models/split/infer",
            json={
                "inputs": [
                    {"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [0.1, 0.2, 0.3]}
                ]
            },
        )
        assert v2.status_code == 200, v2.text
        assert v2.json()["model_version"] == v2.headers["x-model-version"]
        assert client.post("/invocations", json={"inputs": [[0.1, 0.2, 0.3]]}).status_code == 200


# -- canary ------------------------------------------------------------------------------


CANARY_SLOTS = "    - {model: m/1, role: primary}\n    - {model: m/%d, role: canary}\n"


def canary(version: int, steps: str, interval: str, gates: str) -> str:
    extra = (
        f"  steps: {steps}\n  stepInterval: {interval}\n  minRequests: 30\n"
        f"  evaluationInterval: 1s\n  gates:\n{gates}"
    )
    return deployment("fraud", "canary", CANARY_SLOTS % version, extra)


def test_good_canary_ramps_to_full_on_schedule(
    versions: Settings,
    cli: Cli,
    live_server: Callable[..., LiveServer],
    loads: Callable[[str], Load],
) -> None:
    apply(cli, canary(2, "[10, 50, 100]", "2s", "    maxErrorRate: 0.05\n"))
    server = live_server([], versions)
    load = loads(f"{server.url}/v1/models/fraud:predict")
    took = wait_for_phase(server, "fraud", "promoted")
    time.sleep(2.5)  # every replica has seen the promotion
    load.stop()
    steps = [e for e in history(server, "fraud") if e["action"] in ("step", "promote")]
    assert [(e["action"], e["state"]["weights"]["canary"]) for e in steps] == [
        ("step", 50),
        ("step", 100),
        ("promote", 100),
    ]
    assert all(e["actor"].startswith("controller:") for e in steps)
    assert took >= 2 * 2  # the 50 % and 100 % steps each held for their interval
    assert not load.failures()
    assert load.answers[-1].slot == "canary"


@pytest.mark.parametrize(
    ("version", "gates", "symptom"),
    [
        (3, "    maxErrorRate: 0.05\n", "error rate"),
        (4, "    maxP99Ms: 30\n", "p99"),
    ],
    ids=["broken", "slow"],
)
def test_bad_canary_is_rolled_back_automatically(
    versions: Settings,
    cli: Cli,
    live_server: Callable[..., LiveServer],
    loads: Callable[[str], Load],
    version: int,
    gates: str,
    symptom: str,
) -> None:
    apply(cli, canary(version, "[20, 50, 100]", "60s", gates))
    server = live_server([], versions)
    load = loads(f"{server.url}/v1/models/fraud:predict")
    wait_for_phase(server, "fraud", "rolled-back")
    rolled_back_at = time.monotonic()
    time.sleep(3)  # convergence (poll) plus a margin
    load.stop()

    rollback = history(server, "fraud")[-1]
    assert rollback["action"] == "rollback"
    assert symptom in rollback["reason"]
    on_canary = [a for a in load.answers if a.slot == "canary"]
    assert on_canary, "the canary took no traffic before its rollback"
    first_canary = min(a.at for a in on_canary)
    print(
        f"{symptom}: rolled back {rolled_back_at - first_canary:.1f} s after the canary's first "
        f"answer; last canary answer {max(a.at for a in on_canary) - rolled_back_at:+.2f} s "
        f"from the rollback; {len(load.failures())} failed of {len(load.answers)} requests"
    )
    # nothing reached the canary once the rollback was seen, and errors came only from it
    assert max(a.at for a in on_canary) < rolled_back_at + 2
    assert all(a.slot == "canary" for a in load.failures())
    late = [a for a in load.answers if a.at > rolled_back_at + 2]
    assert late
    assert all(a.status == 200 and a.slot == "primary" for a in late)


# -- shadow ------------------------------------------------------------------------------


def test_shadow_never_changes_answers_and_is_compared(
    versions: Settings, cli: Cli, live_server: Callable[..., LiveServer]
) -> None:
    crash = "    - {model: m/1, role: primary}\n    - {model: m/5, role: shadow}\n"
    differ = "    - {model: m/1, role: primary}\n    - {model: m/2, role: shadow}\n"
    apply(
        cli, deployment("crashy", "shadow", crash) + "---\n" + deployment("twice", "shadow", differ)
    )
    logging = versions.model_copy(update={"prediction_log": True, "prediction_log_flush_s": 0.0})
    server = live_server([], logging)
    rng = np.random.default_rng(2)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for name in ("crashy", "twice"):
            for _ in range(200):
                payload = body(rng)
                answer = send(client, f"/v1/models/{name}:predict", payload, {})
                assert answer.status == 200
                assert answer.slot == "primary"
                assert answer.value == pytest.approx(sum(payload["instances"][0]))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        crashy, twice = status(server, "crashy")["figures"], status(server, "twice")["figures"]
        if crashy.get("shadow", {}).get("shadow_failures") == 200 and (
            twice.get("shadow", {}).get("compared_rows") == 200
        ):
            break
        time.sleep(0.3)
    assert crashy["primary"]["requests"] == 200
    assert crashy["primary"]["errors"] == 0
    assert crashy["shadow"]["shadow_failures"] == 200
    assert twice["shadow"]["disagreement_rate"] == 1.0
    assert twice["shadow"]["mean_abs_diff"] > 0
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'modelport_shadow_failures_total{deployment="crashy",slot="shadow"} 200.0' in metrics

    # the prediction log holds both answers to every request, the shadow's marked as such
    server.terminate()
    listed = cli("logs", "--deployment", "twice", "--json", "--limit", "1000")
    assert listed.returncode == 0, listed.stderr
    entries = [json.loads(line) for line in listed.stdout.splitlines()]
    primary = {e["request_id"]: e for e in entries if not e["shadow"]}
    shadow = {e["request_id"]: e for e in entries if e["shadow"]}
    assert len(primary) == 200
    assert shadow.keys() == primary.keys()
    assert {(e["slot"], e["version"]) for e in primary.values()} == {("primary", 1)}
    assert {(e["slot"], e["version"]) for e in shadow.values()} == {("shadow", 2)}
    some = next(iter(primary))
    assert shadow[some]["outputs"]["prediction"] == [
        pytest.approx(2 * v) for v in primary[some]["outputs"]["prediction"]
    ]
    crashed = cli("logs", "--deployment", "crashy", "--json", "--limit", "1000").stdout
    errors = {json.loads(line)["error"] for line in crashed.splitlines()}
    assert errors == {None, "model_error"}


# -- blue-green ----------------------------------------------------------------------------


def test_blue_green_switches_both_ways_under_load_without_a_failure(
    versions: Settings,
    cli: Cli,
    live_server: Callable[..., LiveServer],
    loads: Callable[[str], Load],
) -> None:
    slots = "    - {model: m/1, role: primary}\n    - {model: m/2, role: canary}\n"
    apply(cli, deployment("bg", "blue-green", slots, "  warmup:\n    requests: 5\n"))
    server = live_server([], versions)
    url = f"{server.url}/v1/models/bg:predict"
    busy = [loads(url), loads(url)]

    def serving(version: str) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if all(load.answers and load.answers[-1].version == version for load in busy):
                return
            time.sleep(0.05)
        raise AssertionError(f"still not serving version {version}")

    serving("1")
    assert cli("deployments", "switch", "bg", "--reason", "release 2").returncode == 0
    serving("2")
    assert cli("deployments", "switch", "bg").returncode == 0
    serving("1")
    for load in busy:
        load.stop()
    assert sum(len(load.answers) for load in busy) > 200
    assert [f for load in busy for f in load.failures()] == []
    actions = [(e["action"], e["reason"]) for e in history(server, "bg")]
    assert actions[1:] == [("switch", "release 2"), ("switch", "switch by operator")]


def test_changes_are_refused_with_reasons(versions: Settings, cli: Cli, tmp_path: Path) -> None:
    slots = "    - {model: m/1, role: primary}\n    - {model: m/9, role: canary}\n"
    result = cli("apply", "-f", "-", input=deployment("x", "blue-green", slots))
    assert result.returncode == 1
    assert "spec.slots[1].model" in result.stderr
    result = cli("deployments", "pause", "nothing")
    assert result.returncode == 1
    assert "not found" in result.stderr
