"""Jobs across real server processes: accepted by one, run by another after a restart, a kill
or a graceful stop, with exactly one answer."""

from __future__ import annotations

import signal
import time
from typing import Any

import httpx

from modelport.config import Settings
from tests.e2e.jobs import EXPECTED, finished, job_at, only_answer, submit, wait_for


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
