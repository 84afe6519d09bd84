"""Production-mode jobs: a server hands jobs to `modelport worker` processes through a real
Redis or RabbitMQ broker. A worker killed mid-job, or stopped, loses nothing and a job still
has one answer; a job accepted while the broker was down is sent by a worker's sweep."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis
from pydantic import SecretStr

from modelport.config import Settings
from modelport.jobs import JobKind, JobRequest, JobState, JobStore, NewJob
from modelport.jobs.worker import JobWorker
from modelport.registry import Registry
from tests.conftest import port_open, service_missing
from tests.e2e.conftest import settings_env
from tests.e2e.jobs import EXPECTED, finished, job_at, only_answer, submit, wait_for

BROKERS = {
    "redis": ("redis://127.0.0.1:6379/0", 6379),
    "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672//", 5672),
}


@pytest.fixture(params=sorted(BROKERS))
def broker_settings(request: pytest.FixtureRequest, slow_settings: Settings) -> Settings:
    """The slow model's settings with a broker, and queues of this test's own."""
    url, port = BROKERS[request.param]
    if not port_open("127.0.0.1", port):
        service_missing(f"{request.param} on 127.0.0.1:{port}")
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    return slow_settings.model_copy(
        update={"job_broker_url": SecretStr(url), "job_queue_prefix": prefix}
    )


class Worker:
    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[Settings], Worker]]:
    started: list[Worker] = []

    def start(settings: Settings) -> Worker:
        log_path = tmp_path / f"worker-{len(started)}.log"
        command = [sys.executable, "-m", "modelport", "worker", "slow"]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=settings_env(settings)
            )
        worker = Worker(process, log_path)
        started.append(worker)
        deadline = time.monotonic() + 60
        while "running jobs of" not in worker.log():
            assert process.poll() is None, worker.log()
            assert time.monotonic() < deadline, worker.log()
            time.sleep(0.1)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()


def test_a_server_hands_jobs_to_a_worker_and_runs_none_itself(
    live_server: Any, broker_settings: Settings, start_worker: Callable[[Settings], Worker]
) -> None:
    server = live_server(["slow"], broker_settings)
    worker = start_worker(broker_settings)
    urls = [submit(server) for _ in range(2)]
    for url in urls:
        job = wait_for(url, finished)
        assert (job["state"], job["attempts"]) == ("succeeded", 1), job
        assert job["result"]["body"] == EXPECTED
    assert "running slow" not in server.log()
    assert worker.log().count("succeeded (slow/1)") == 2


def test_a_killed_workers_job_completes_once_on_another(
    live_server: Any, broker_settings: Settings, start_worker: Callable[[Settings], Worker]
) -> None:
    server = live_server(["slow"], broker_settings)
    first = start_worker(broker_settings)
    url = submit(server)
    wait_for(url, lambda job: job["progress"]["rows_done"] >= 3)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)

    second = start_worker(broker_settings)
    job = wait_for(url, finished)
    assert (job["state"], job["attempts"]) == ("succeeded", 2), job
    assert job["result"]["body"] == EXPECTED
    assert only_answer(broker_settings, job["id"]) == httpx.get(f"{url}/result").content
    assert "stopped reporting; queued again" in second.log()
    time.sleep(1.5)  # a redelivered message, if any, finds the job done and leaves it
    assert job_at(url)["attempts"] == 2


def test_a_stopping_worker_gives_its_job_back_at_once(
    live_server: Any, broker_settings: Settings, start_worker: Callable[[Settings], Worker]
) -> None:
    # a long lease: were the job not given back, it would wait for it
    settings = broker_settings.model_copy(update={"job_lease_s": 600.0})
    server = live_server(["slow"], settings)
    first = start_worker(settings)
    url = submit(server)
    wait_for(url, lambda job: job["progress"]["rows_done"] >= 2)
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(timeout=30) == 0, first.log()
    assert "given back to the queue" in first.log()

    start_worker(settings)
    job = wait_for(url, finished)
    assert (job["state"], job["attempts"]) == ("succeeded", 1), job


def test_a_job_accepted_while_the_broker_is_down_is_sent_by_the_sweep(
    live_server: Any, broker_settings: Settings, start_worker: Callable[[Settings], Worker]
) -> None:
    unreachable = broker_settings.model_copy(
        update={"job_broker_url": SecretStr("redis://127.0.0.1:9/0")}
    )
    server = live_server(["slow"], unreachable)
    url = submit(server)  # accepted: the job is safe in the database
    assert "a worker's sweep will send it" in server.log()

    start_worker(broker_settings)  # on the working broker, four leases later
    job = wait_for(url, finished)
    assert (job["state"], job["attempts"]) == ("succeeded", 1), job


def test_a_worker_needs_a_broker(cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    done = cli("worker", "slow")
    assert done.returncode == 1
    assert "MODELPORT_JOB_BROKER_URL is not set" in done.stderr


def test_a_batch_job_runs_on_a_worker(
    live_server: Any,
    broker_settings: Settings,
    start_worker: Callable[[Settings], Worker],
    tmp_path: Path,
) -> None:
    settings = broker_settings.model_copy(update={"batch_roots": [str(tmp_path)]})
    frame = pd.DataFrame(np.ones((100, 3)), columns=["a", "b", "c"])
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "in.parquet")
    server = live_server(["slow"], settings)
    worker = start_worker(settings)
    spec = {"input": str(tmp_path / "in.parquet"), "output": str(tmp_path / "out")}
    answer = httpx.post(f"{server.url}/v1/models/slow/batch-jobs", json=spec, timeout=10)
    assert answer.status_code == 202, answer.text
    job = wait_for(f"{server.url}{answer.headers['location']}", finished)
    assert job["state"] == "succeeded", job
    assert job["result"]["body"]["rows"] == 100
    assert pq.read_table(tmp_path / "out").num_rows == 100
    assert "succeeded (slow/1)" in worker.log()


def test_the_worker_task_runs_a_job_once_and_the_sweep_sends_a_lost_one(
    slow_settings: Settings,
) -> None:
    """In this process, with the task called as Celery calls it; the broker is Redis."""
    url, port = BROKERS["redis"]
    if not port_open("127.0.0.1", port):
        service_missing(f"redis on 127.0.0.1:{port}")
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    settings = slow_settings.model_copy(
        update={"job_broker_url": SecretStr(url), "job_queue_prefix": prefix}
    )
    worker = JobWorker(settings, ["slow"])
    registry = Registry.from_settings(settings)
    queue = redis.Redis.from_url(url)
    try:
        assert worker.start() == []
        store = JobStore(registry.database)
        body = orjson.dumps({"instances": [[1.0, 1.0, 1.0]] * 3})
        request = JobRequest.submitted(body, "application/json")
        new = NewJob(JobKind.PREDICT, "slow", "slow", request.format.value, request.options(),
                     None, "r-1", body)  # fmt: skip
        job = store.submit(new)
        worker.run(job.id)
        assert store.get(job.id).state is JobState.SUCCEEDED
        worker.run(job.id)  # the same message again: nothing to do
        assert store.get(job.id).attempts == 1

        lost = store.submit(new)
        assert store.claim("a-dead-worker", ["slow"]) is not None
        deadline = time.monotonic() + 20
        while queue.llen(f"{prefix}.slow") == 0:  # the sweep found it silent and sent it
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert store.get(lost.id).state is JobState.QUEUED
        worker.run(lost.id)
        assert store.get(lost.id).state is JobState.SUCCEEDED
    finally:
        worker.close()
        registry.close()
        queue.delete(f"{prefix}.slow")
