"""`modelport serve` starting and stopping as an operator sees it: fail fast, no orphans."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings
from modelport.registry import Registry
from tests.e2e.conftest import free_port, settings_env
from tests.e2e.doubles import SlowPoisonModel


def _serve(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelport", "serve", *args],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_model_that_does_not_exist_fails_the_start(settings: Settings) -> None:
    result = _serve(settings, "nosuch", "--port", str(free_port()))
    assert result.returncode == 1
    assert "error: Model not found" in result.stderr
    assert "nosuch" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_model_whose_version_cannot_load_fails_the_start(
    settings: Settings, iris_logreg: LogisticRegression, iris_data: tuple[np.ndarray, np.ndarray]
) -> None:
    modelport.log_model(iris_logreg, "iris", iris_data[0][:10], settings=settings)
    registry = Registry.from_settings(settings)
    folder = registry.artifact_dir(registry.resolve("iris"))
    registry.close()
    for path in folder.iterdir():
        if path.suffix == ".skops":
            path.write_bytes(path.read_bytes()[:-10])
    result = _serve(settings, "iris", "--port", str(free_port()), "--workers", "1")
    assert result.returncode == 1
    assert "error: Configuration error: nothing to serve for iris" in result.stderr
    assert "hash" in result.stderr.lower() or "sha-256" in result.stderr.lower()


def test_a_port_in_use_is_a_clear_error(settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = _serve(settings, "iris", "--port", str(port))
    assert result.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in result.stderr


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_workers_exit_when_their_supervisor_is_killed(
    live_server: Any,
    settings: Settings,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    modelport.log_model(iris_logreg, "iris", iris_data[0][:10], settings=settings)
    server = live_server(["iris"], settings, "--workers", "2")
    workers = [
        p
        for p in _children(server.process.pid)
        if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()
    ]
    assert len(workers) == 2
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers)


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_every_worker_logs_json_lines_with_the_request_id(
    live_server: Any, make_settings: Any
) -> None:
    settings = make_settings(log_format="json", access_log=True)
    modelport.log_model(SlowPoisonModel(), "poison", np.ones((2, 3)), settings=settings)
    server = live_server(["poison"], settings, "--workers", "2")
    failed = httpx.post(
        f"{server.url}/v1/models/poison:predict",
        json={"instances": [[-1.0, 1.0, 1.0]]},
        headers={"x-request-id": "trace-7"},
    )
    traced = httpx.post(
        f"{server.url}/v1/models/poison:predict",
        json={"instances": [[-1.0, 1.0, 1.0]]},
        headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"},
    )
    assert failed.status_code == traced.status_code == 500
    assert "poisoned" not in failed.text
    span_id = traced.headers["traceresponse"].split("-")[2]
    assert server.terminate() in (0, -15)
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    ready = [entry for entry in lines if entry["message"].startswith("ready (pid")]
    assert len(ready) == 2  # both workers log at INFO
    errors = [entry for entry in lines if entry["request_id"] == "trace-7"]
    assert errors
    assert errors[0]["level"] == "ERROR"
    assert "poisoned row" in errors[0]["message"] + errors[0].get("exception", "")
    assert "trace_id" not in errors[0]
    [in_trace] = [e for e in lines if e["request_id"] == TRACE_ID and e["level"] == "ERROR"]
    assert (in_trace["trace_id"], in_trace["span_id"]) == (TRACE_ID, span_id)
    access = [e["message"] for e in lines if e["logger"] == "uvicorn.access"]
    # the client may send the colon percent-encoded or not (httpx changed between releases)
    assert any(
        re.search(r'"POST /v1/models/poison(:|%3A)predict HTTP/1.1" 500', m) for m in access
    ), access
