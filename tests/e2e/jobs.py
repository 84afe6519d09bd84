"""Helpers of the job tests across processes: a slow model's job, submitted and polled over
HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np

from modelport.config import Settings
from modelport.jobs import JobStore
from modelport.jobs.store import RESULT
from modelport.registry import Registry
from tests.e2e.conftest import LiveServer

ROWS = 60
BODY = {"instances": np.ones((ROWS, 3)).tolist()}
EXPECTED = {"predictions": [3.0] * ROWS}


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
