"""Jobs across real server processes: accepted by one, run by another after a restart, a kill
or a graceful stop, with exactly one answer."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest

import modelport
from modelport.config import Settings
from modelport.jobs import JobStore
from modelport.jobs.store import RESULT
from modelport.registry import Registry
from tests.e2e.conftest import LiveServer
from tests.e2e.doubles import SlowPoisonModel

ROWS = 60
BODY = {"instances": np.ones((ROWS, 3)).tolist()}
EXPECTED = {"predictions": [3.0] * ROWS}


@pytest.fixture
def slow_settings(make_settings: Callable[..., Settings]) -> Settings:
    """One row per piece at 50 ms a call: a job that runs for about 3 s, and a lease short
    enough that a killed worker's job moves on within the test."""
    settings = make_settings(workers=1, job_piece_rows=1, job_lease_s=1.0, job_poll_s=0.2)
    modelport.log_model(SlowPoisonModel(), "slow", np.ones((2, 3)), settings=settings)
    return settings


def submit(server: LiveServer) -> str:
    answer = httpx.post(f"{server.url}/v1/models/slow/jobs", json=BODY, timeout=10)
    assert answer.status_code == 202, answer.text
    return f"{server.url}{answer.headers['location']}"


def job_at(url: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(url, timeout=10).json()
    return answer


def wait_for(url: str, done: Callable[[dict[str, Any]], bool], timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while not done(job := job_at(url)):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    return job


def finished(job: dict[str, Any]) -> bool:
    return job["state"] in ("succeeded", "failed", "cancelled")


def only_answer(settings: Settings, job_id: str) -> Any:
    registry = Registry.from_settings(settings)
    try:
        return JobStore(registry.database).payload(job_id, RESULT)
    finally:
        registry.close()


def test_a_job_accepted_before_a_restart_runs_after_it(
    live_server: Any, slow_settings: Settings
) -> None:
    accepting = live_server(["slow"], slow_settings.model_copy(update={"job_workers": 0}))
    url = submit(accepting)
    time.sleep(0.5)
    assert job_at(url)["state"] == "queued"
    assert accepting.terminate() in (0, -15)

    running = live_server(["slow"], slow_settings)
    job = wait_for(url.replace(accepting.url, running.url), finished)
    assert job["state"] == "succeeded", job
    assert job["result"]["body"] == EXPECTED
    assert job["attempts"] == 1


def test_a_killed_workers_job_completes_once_elsewhere(
    live_server: Any, slow_settings: Settings
) -> None:
    first = live_server(["slow"], slow_settings)
    url = submit(first)
    wait_for(url, lambda job: job["progress"]["rows_done"] >= 3)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)

    second = live_server(["slow"], slow_settings)
    moved = url.replace(first.url, second.url)
    job = wait_for(moved, finished)
    assert job["state"] == "succeeded", job
    assert job["attempts"] == 2
    assert job["result"]["body"] == EXPECTED
    assert only_answer(slow_settings, job["id"]) == httpx.get(f"{moved}/result").content
    assert "stopped reporting; queued again" in second.log()


def test_a_graceful_stop_gives_the_running_job_back_at_once(
    live_server: Any, slow_settings: Settings
) -> None:
    # a long lease: were the job not given back, it would wait for it
    settings = slow_settings.model_copy(update={"job_lease_s": 600.0})
    first = live_server(["slow"], settings)
    url = submit(first)
    wait_for(url, lambda job: job["progress"]["rows_done"] >= 2)
    assert first.terminate() in (0, -15)
    assert "given back to the queue" in first.log()

    second = live_server(["slow"], settings)
    job = wait_for(url.replace(first.url, second.url), finished)
    assert job["state"] == "succeeded", job
    assert job["attempts"] == 1  # the interrupted run did not count
    assert job["result"]["body"] == EXPECTED
