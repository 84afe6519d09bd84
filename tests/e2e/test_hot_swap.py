"""Hot reload against a real server: alias moves under load, and a broken version never serves."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings
from modelport.registry import Registry


def _register_two_versions(
    settings: Settings, iris_logreg: LogisticRegression, X: np.ndarray, y: np.ndarray
) -> None:
    constant = DummyClassifier(strategy="constant", constant=2).fit(X, y)
    modelport.log_model(iris_logreg, "iris", X[:10], settings=settings)
    modelport.log_model(constant, "iris", X[:10], settings=settings)
    registry = Registry.from_settings(settings)
    registry.set_alias("iris", "production", 1)
    registry.close()


class SteadyClient(threading.Thread):
    """Sends the same request back to back over one keep-alive connection, recording answers."""

    def __init__(self, url: str, body: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.url, self.body = url, body
        self.answers: list[tuple[int, Any]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                try:
                    response = client.post(self.url, json=self.body)
                    self.answers.append((response.status_code, response.json()))
                except httpx.HTTPError as exc:
                    self.answers.append((0, repr(exc)))


def test_alias_move_under_load_drops_nothing(
    live_server: Any,
    make_settings: Any,
    cli: Any,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = iris_data
    settings = make_settings(reload_interval_s=0.2)
    _register_two_versions(settings, iris_logreg, X, y)
    rows = X[[0, 60, 120]]
    v1_answer = iris_logreg.predict(rows).tolist()
    v2_answer = [2, 2, 2]
    assert v1_answer != v2_answer
    server = live_server(["iris@production"], settings)
    clients = [
        SteadyClient(f"{server.url}/v1/models/iris:predict", {"instances": rows.tolist()})
        for _ in range(3)
    ]
    for client in clients:
        client.start()
    time.sleep(1.0)
    moved = cli("alias", "set", "iris", "production", "2", settings_override=settings)
    assert moved.returncode == 0, moved.stderr
    deadline = time.monotonic() + 20
    while not all(c.answers and c.answers[-1][1] == {"predictions": v2_answer} for c in clients):
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)
    time.sleep(0.5)
    for client in clients:
        client.stop.set()
        client.join()
    for client in clients:
        statuses = {status for status, _ in client.answers}
        assert statuses == {200}, [a for a in client.answers if a[0] != 200][:3]
        predictions = [body["predictions"] for _, body in client.answers]
        switch = predictions.index(v2_answer)
        assert switch > 0, "no request was answered by v1 before the move"
        assert all(p == v1_answer for p in predictions[:switch])
        assert all(p == v2_answer for p in predictions[switch:])
    assert "switched from iris/1 to iris/2" in server.log()


def test_version_that_fails_to_load_never_takes_traffic(
    live_server: Any,
    make_settings: Any,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = iris_data
    settings = make_settings(reload_interval_s=0.2)
    _register_two_versions(settings, iris_logreg, X, y)
    registry = Registry.from_settings(settings)
    broken = registry.get_version("iris", 2)
    stored = Path(broken.artifact_uri.removeprefix("file://")) / "model.skops"
    stored.write_bytes(stored.read_bytes()[:-10] + b"tampered!!")
    server = live_server(["iris@production"], settings)
    body = {"instances": X[:5].tolist()}
    registry.set_alias("iris", "production", 2)
    registry.close()
    deadline = time.monotonic() + 20
    while True:
        status = httpx.get(f"{server.url}/api/serving").json()["models"][0]
        if status["failed_version"] == 2:
            break
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)
    answer = httpx.post(f"{server.url}/v1/models/iris:predict", json=body)
    assert answer.status_code == 200
    assert answer.json()["predictions"] == iris_logreg.predict(X[:5]).tolist()
    assert status["version"] == 1
    assert status["state"] == "ready"
    assert "SHA-256" in status["last_error"]
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'modelport_model_load_failures_total{model="iris",version="2"} 1.0' in metrics
    assert "iris/2 failed to load" in server.log()
