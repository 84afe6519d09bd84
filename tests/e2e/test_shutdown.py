"""SIGTERM drains: a request in flight when the signal arrives still gets its answer."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

import modelport
from modelport.config import Settings
from tests.e2e.doubles import SlowModel


def test_sigterm_drains_in_flight_requests(
    live_server: Any, settings: Settings, tmp_path: Path, monkeypatch: Any
) -> None:
    marker = tmp_path / "in-flight"
    monkeypatch.setenv("SLOW_MODEL_MARKER", str(marker))
    modelport.log_model(SlowModel(), "slow", np.array([[0.0]]), settings=settings)
    server = live_server(["slow"], settings)
    answers: list[httpx.Response] = []

    def slow_request() -> None:
        answers.append(
            httpx.post(
                f"{server.url}/v1/models/slow:predict", json={"instances": [[1.5]]}, timeout=30
            )
        )

    caller = threading.Thread(target=slow_request)
    caller.start()
    deadline = time.monotonic() + 10
    while not marker.exists():
        assert time.monotonic() < deadline, "the slow request never reached the model"
        time.sleep(0.05)
    started = time.monotonic()
    server.process.send_signal(15)
    caller.join(timeout=30)
    assert answers, "the in-flight request got no answer"
    assert answers[0].status_code == 200
    assert answers[0].json() == {"predictions": [1.5]}
    assert server.process.wait(timeout=30) in (0, -15)
    assert time.monotonic() - started >= 1.0, "the server did not wait for the request"
    assert "Application shutdown complete" in server.log()
