"""Schedules on SQLite and PostgreSQL: one job per due time however many processes look, a
missed stretch made up by one run, pause and resume; and a schedule fired by a real server,
whose batch job writes the run's folder."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import Result
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

import modelport
from modelport.cli.main import app
from modelport.config import Settings, as_environment
from modelport.errors import ConflictError, InvalidInputError, NotFoundError
from modelport.jobs import JobKind, JobState, JobStore
from modelport.jobs.schedules import ScheduleStore, next_time, output_for
from modelport.registry import Registry
from modelport.store.tables import utcnow
from tests.e2e.jobs import finished, wait_for

OPTIONS = {"input": "/data/in", "output": "/data/out/{date}", "overwrite": True}
HOURLY = "0 * * * *"


@pytest.fixture
def registry(backend: Settings) -> Iterator[Registry]:
    opened = Registry.from_settings(backend)
    yield opened
    opened.close()


def test_a_missed_stretch_is_made_up_by_one_run_then_the_schedule_goes_on(
    registry: Registry,
) -> None:
    store = ScheduleStore(registry.database)
    five_hours_ago = utcnow() - timedelta(hours=5)
    added = store.add("nightly", "iris@production", HOURLY, OPTIONS, created_by="t",
                      now=five_hours_ago)  # fmt: skip
    assert added.next_run_at < utcnow()

    jobs = store.fire_due()
    assert len(jobs) == 1
    job = jobs[0]
    assert (job.kind, job.reference, job.name, job.state) == (
        JobKind.BATCH, "iris@production", "iris", JobState.QUEUED
    )  # fmt: skip
    assert job.options["output"] == f"/data/out/{added.next_run_at:%Y-%m-%d}"
    assert store.fire_due() == []
    (after,) = store.schedules()
    assert after.last_run_at == added.next_run_at
    assert after.last_job_id == job.id
    assert utcnow() < after.next_run_at <= utcnow() + timedelta(hours=1)
    assert JobStore(registry.database).get(job.id).request_id.startswith("schedule:nightly:")


def test_many_processes_looking_at_once_queue_one_job(registry: Registry) -> None:
    store = ScheduleStore(registry.database)
    store.add("often", "iris", HOURLY, OPTIONS, created_by="t", now=utcnow() - timedelta(hours=2))
    fired: list[int] = []
    start = threading.Barrier(6)

    def look() -> None:
        start.wait()
        fired.append(len(store.fire_due()))

    threads = [threading.Thread(target=look) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(fired) == 1
    assert len(JobStore(registry.database).jobs()) == 1


def test_pause_resume_remove_and_mistakes(registry: Registry) -> None:
    store = ScheduleStore(registry.database)
    store.add("s", "iris", HOURLY, OPTIONS, created_by="t", now=utcnow() - timedelta(hours=3))
    store.set_enabled("s", False)
    assert store.fire_due() == []
    resumed = store.set_enabled("s", True)
    assert resumed.next_run_at > utcnow()  # the paused times are skipped, not made up
    with pytest.raises(ConflictError):
        store.add("s", "iris", HOURLY, OPTIONS, created_by="t")
    with pytest.raises(InvalidInputError, match="not a cron expression"):
        store.add("t", "iris", "61 * * * *", OPTIONS, created_by="t")
    with pytest.raises(InvalidInputError, match="unknown time zone"):
        store.add("t", "iris", HOURLY, OPTIONS, timezone="Mars/Olympus", created_by="t")
    store.remove("s")
    with pytest.raises(NotFoundError):
        store.remove("s")
    assert store.schedules() == []


def test_cron_times_are_read_in_the_schedules_time_zone() -> None:
    after = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    assert next_time("0 2 * * *", "Europe/Berlin", after) == datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    due = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)
    assert output_for("s3://b/{date}/{time}", due) == "s3://b/2026-03-01/20260301T0230"


def test_a_server_fires_a_missed_schedule_and_its_job_scores_the_files(
    live_server: Any,
    cli: Callable[..., Any],
    settings: Settings,
    tmp_path: Path,
    iris_logreg: LogisticRegression,
    iris_data: Any,
) -> None:
    modelport.log_model(iris_logreg, "iris", iris_data[0][:20], settings=settings)
    frame = pd.DataFrame(iris_data[0], columns=["f0", "f1", "f2", "f3"])
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "in.parquet")
    source, out = str(tmp_path / "in.parquet"), str(tmp_path / "out" / "{date}")
    added = cli("schedules", "add", "daily", "-m", "iris", "--cron", "0 2 * * *",
                "-i", source, "-o", out, "--json")  # fmt: skip
    assert added.returncode == 0, added.stderr
    registry = Registry.from_settings(settings)
    try:  # as if every server had been down at the last 02:00
        store = ScheduleStore(registry.database)
        options = store.schedules()[0].options
        store.remove("daily")
        store.add("daily", "iris", "0 2 * * *", options, created_by="t",
                  now=utcnow() - timedelta(days=1))  # fmt: skip
        due = store.schedules()[0].next_run_at
    finally:
        registry.close()

    server = live_server(["iris"], settings)
    listed = json.loads(cli("schedules", "list", "--json").stdout)["schedules"][0]
    for _ in range(100):
        if listed["last_job_id"]:
            break
        listed = json.loads(cli("schedules", "list", "--json").stdout)["schedules"][0]
    job = wait_for(f"{server.url}/v1/jobs/{listed['last_job_id']}", finished)
    assert job["state"] == "succeeded", job
    scored = pq.read_table(tmp_path / "out" / f"{due:%Y-%m-%d}").to_pandas()
    assert np.array_equal(scored["label"], iris_logreg.predict(iris_data[0]))
    assert "queued batch job" in server.log()


def test_the_schedules_commands_add_list_pause_resume_and_remove(
    settings: Settings, iris_logreg: LogisticRegression, iris_data: Any
) -> None:
    modelport.log_model(iris_logreg, "iris", iris_data[0][:20], settings=settings)
    runner = CliRunner()
    env = as_environment(settings)

    def run(*args: str) -> Result:
        return runner.invoke(app, ["schedules", *args], env=env, catch_exceptions=False)

    added = run("add", "nightly", "-m", "iris", "--cron", "0 2 * * *", "-i", "/data/in",
                "-o", "/data/out/{date}", "--passthrough", "row_id", "--json")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert json.loads(added.output)["batch"]["passthrough"] == ["row_id"]
    assert "nightly" in run("list").output
    assert run("pause", "nightly").exit_code == 0
    assert "(paused)" in run("list").output
    assert "next run" in run("resume", "nightly").output
    again = run("add", "nightly", "-m", "iris", "--cron", "0 2 * * *", "-i", "x", "-o", "y")
    assert again.exit_code == 1
    assert "exists" in again.output
    typo = run("add", "other", "-m", "iris", "--cron", "0 25 * * *", "-i", "x", "-o", "y")
    assert typo.exit_code == 1
    assert "not a cron expression" in typo.output
    unknown = run("add", "other", "-m", "nope", "--cron", "0 2 * * *", "-i", "x", "-o", "y")
    assert unknown.exit_code == 1
    assert run("remove", "nightly").exit_code == 0
    assert json.loads(run("list", "--json").output) == {"schedules": []}
    assert run("remove", "nightly").exit_code == 1
