"""`serve --workers 2`: two processes share the port, and /metrics counts both."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings


def test_two_workers_answer_and_metrics_add_up(
    live_server: Any,
    settings: Settings,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    modelport.log_model(iris_logreg, "iris", X[:10], settings=settings)
    server = live_server(["iris"], settings, "--workers", "2")
    body = {"instances": X[:2].tolist()}
    expected = iris_logreg.predict(X[:2]).tolist()

    def call(_: int) -> tuple[int, Any]:
        with httpx.Client() as client:  # a new connection each time spreads over the workers
            answer = client.post(f"{server.url}/v1/models/iris:predict", json=body)
            return answer.status_code, answer.json()["predictions"]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(call, range(120)))
    assert answers == [(200, expected)] * 120
    metrics = httpx.get(f"{server.url}/metrics").text
    served = re.search(
        r'modelport_requests_total{deployment="",model="iris",protocol="v1",slot="",status="200",'
        r'version="1"} (\S+)',
        metrics,
    )
    assert served is not None
    assert float(served.group(1)) == 120.0
    rows = re.search(r'modelport_predicted_rows_total{model="iris",version="1"} (\S+)', metrics)
    assert rows is not None
    assert float(rows.group(1)) == 240.0
    assert 'modelport_model_loaded_version{model="iris"} 1.0' in metrics
    # the whole text parses, and gauges summed over workers are right: nothing in flight now
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
    }
    assert samples[("modelport_requests_in_flight", (("protocol", "v1"),))] == 0.0
    assert server.terminate() in (0, -15)
    # access lines are opt-in (MODELPORT_ACCESS_LOG), in every worker as in one process
    assert "uvicorn.access" not in server.log()
    assert "loading iris/1" in server.log()
