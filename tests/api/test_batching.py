"""Adaptive batching through the real app: merging, isolation of a failing request, shedding."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

import modelport
from modelport.config import Settings
from modelport.serving import create_app
from tests.e2e.doubles import SlowPoisonModel

Scenario = Callable[[httpx.AsyncClient], Awaitable[Any]]


def run_against(settings: Settings, scenario: Scenario) -> Any:
    """Run ``scenario`` with an async client on the app serving ``slow``, many requests at once."""
    app = create_app(settings, ["slow"], metrics_registry=CollectorRegistry())

    async def main() -> Any:
        async with app.app.router.lifespan_context(app.app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://localhost"
            ) as client:
                while (await client.get("/readyz")).status_code != 200:
                    await asyncio.sleep(0.02)
                return await scenario(client)

    return asyncio.run(main())


def _register(settings: Settings) -> None:
    modelport.log_model(SlowPoisonModel(), "slow", np.ones((2, 3)), settings=settings)


def _metric(text: str, name: str, **labels: str) -> float:
    selector = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    match = re.search(rf"^{name}{{{re.escape(selector)}}} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_every_request_gets_its_own_rows_back(make_settings: Any) -> None:
    settings = make_settings(batch_max_size=64)
    _register(settings)
    rng = np.random.default_rng(0)
    requests = [
        rng.integers(0, 100, size=(int(rng.integers(1, 6)), 3)).astype(float) for _ in range(60)
    ]

    async def scenario(client: httpx.AsyncClient) -> tuple[list[httpx.Response], str]:
        answers = await asyncio.gather(
            *[
                client.post(
                    "/v2/models/slow/infer",
                    json={
                        "inputs": [
                            {
                                "name": "input",
                                "shape": list(r.shape),
                                "datatype": "FP64",
                                "data": r.ravel().tolist(),
                            }
                        ]
                    },
                )
                for r in requests
            ]
        )
        return answers, (await client.get("/metrics")).text

    answers, metrics = run_against(settings, scenario)
    merged_calls = 0
    for rows, answer in zip(requests, answers, strict=True):
        assert answer.status_code == 200, answer.text
        outputs = {o["name"]: o["data"] for o in answer.json()["outputs"]}
        assert outputs["prediction"] == rows.sum(axis=1).tolist()
        merged_calls += outputs["rows"][0] > len(rows)
    assert merged_calls > 0, "no request shared a model call"
    labels = {"model": "slow", "version": "1"}
    calls = _metric(metrics, "modelport_batch_rows_count", **labels)
    assert 0 < calls < len(requests)
    assert _metric(metrics, "modelport_batch_rows_sum", **labels) == sum(len(r) for r in requests)
    releases = sum(
        _metric(metrics, "modelport_batch_releases_total", reason=reason, **labels)
        for reason in ("full", "timer", "idle")
    )
    assert releases == calls


def test_a_failing_request_does_not_fail_its_batch(
    make_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings()
    _register(settings)
    bodies = [{"instances": [[float(i), 1.0, 1.0]]} for i in range(12)]
    bodies[5] = {"instances": [[-1.0, 1.0, 1.0]]}

    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        return list(
            await asyncio.gather(*[client.post("/v1/models/slow:predict", json=b) for b in bodies])
        )

    with caplog.at_level(logging.ERROR, logger="modelport.serving"):
        answers = run_against(settings, scenario)
    for index, answer in enumerate(answers):
        if index == 5:
            assert answer.status_code == 500
            problem = answer.json()
            assert problem["code"] == "model_error"
            # the model's own message stays in the log, under the id the client can quote
            assert "poisoned row" not in answer.text
            assert problem["request_id"] == answer.headers["x-request-id"]
            logged = [r.getMessage() for r in caplog.records]
            assert any(problem["request_id"] in m and "poisoned row" in m for m in logged)
        else:
            assert answer.status_code == 200, answer.text
            assert answer.json()["predictions"] == [index + 2.0]


def test_a_full_queue_sheds_load_with_503(make_settings: Any) -> None:
    settings = make_settings(queue_max_rows=3, inference_threads=1)
    _register(settings)

    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        return list(
            await asyncio.gather(
                *[
                    client.post("/v1/models/slow:predict", json={"instances": [[1.0, 2.0, 3.0]]})
                    for _ in range(20)
                ]
            )
        )

    answers = run_against(settings, scenario)
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) >= 3
    shed = [a for a in answers if a.status_code == 503]
    assert shed, statuses
    assert all(a.headers["retry-after"] == "1" for a in shed)
    assert all(a.json()["code"] == "queue_full" for a in shed)
    assert set(statuses) == {200, 503}


def test_per_model_options_override_the_server_defaults(make_settings: Any) -> None:
    settings = make_settings(model_options={"slow": {"batch_max_size": 2}})
    _register(settings)
    requests = [{"instances": [[1.0, 1.0, 1.0]]} for _ in range(10)]

    async def scenario(client: httpx.AsyncClient) -> str:
        await asyncio.gather(*[client.post("/v1/models/slow:predict", json=b) for b in requests])
        return (await client.get("/metrics")).text

    metrics = run_against(settings, scenario)
    labels = {"model": "slow", "version": "1"}
    assert _metric(metrics, "modelport_batch_rows_bucket", le="2.0", **labels) == _metric(
        metrics, "modelport_batch_rows_count", **labels
    )
    assert _metric(metrics, "modelport_batch_releases_total", reason="full", **labels) > 0
