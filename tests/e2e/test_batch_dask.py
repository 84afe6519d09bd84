"""`modelport batch --engine dask` on a real cluster: a scheduler in this process and two
worker processes (distributed.LocalCluster), scoring the same files as the local engine into
the same outputs, loading the model once per worker, failing on a model error (or a model
that cannot load) with the parts written kept for the next run, surviving a killed worker,
and from the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings
from modelport.errors import ConfigurationError, ModelError, ModelLoadError
from modelport.jobs.batch.parts import FileFormat
from modelport.jobs.batch.scoring import BatchJob, Engine, run
from modelport.runtimes.pyfunc import PythonModel
from tests.e2e.conftest import free_port
from tests.e2e.doubles import SlowPoisonModel

Cli = Callable[..., subprocess.CompletedProcess[str]]

WATCH = "BATCH_DASK_WATCH_DIR"


class Watched(PythonModel):
    """Sums each row. Every load leaves a file named after its process in ``$WATCH`` (or
    fails while ``$WATCH/unloadable`` exists), and rows holding -1 fail while
    ``$WATCH/broken`` exists: faults that can be mended."""

    def load(self, artifacts: Path) -> None:
        folder = Path(os.environ[WATCH])
        if (folder / "unloadable").exists():
            raise RuntimeError("cannot load")
        (folder / f"load-{os.getpid()}-{uuid.uuid4().hex}").touch()

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        rows = inputs["input"]
        if (rows == -1).any() and (Path(os.environ[WATCH]) / "broken").exists():
            raise ValueError("poisoned row")
        return rows.sum(axis=1)


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``$WATCH`` for this process and the workers it starts."""
    folder = tmp_path_factory.mktemp("watch")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(WATCH, str(folder))
        yield folder


@pytest.fixture(scope="module")
def scheduler(watched: Path) -> Iterator[str]:
    """The address of a two-worker cluster (one process and one thread each); its web
    server on a free port.

    Dask's nanny writes its workers' settings (OMP_NUM_THREADS=1 among them) into this
    process's environment and leaves them there: they are taken back afterwards, or every
    process a later test starts here would run with one BLAS thread."""
    environment = dict(os.environ)
    try:
        with LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
        ) as cluster:
            yield cluster.scheduler_address
    finally:
        os.environ.clear()
        os.environ.update(environment)


@pytest.fixture
def iris(settings: Settings, iris_logreg: LogisticRegression, iris_data: Any) -> pd.DataFrame:
    """iris/1 registered; its rows 20 times over with a row_id."""
    X = iris_data[0]
    modelport.log_model(iris_logreg, "iris", X[:20], settings=settings)
    frame = pd.DataFrame(np.tile(X, (20, 1)), columns=["f0", "f1", "f2", "f3"])
    frame.insert(0, "row_id", np.arange(len(frame)))
    return frame


def csv_parts(folder: Path, parts: int, rows: int, poisoned: int | None = None) -> Path:
    """``parts`` CSV files of ``rows`` rows: an ``id``, and a, b, c summing to 3 + the part's
    number (the part ``poisoned`` holds a -1)."""
    folder.mkdir()
    for i in range(parts):
        ids = np.arange(i * rows, (i + 1) * rows)
        frame = pd.DataFrame({"id": ids, "a": 1.0, "b": 2.0, "c": float(i)})
        if i == poisoned:
            frame.loc[rows // 2, "c"] = -1.0
        frame.to_csv(folder / f"{i:02d}.csv", index=False)
    return folder


def written(folder: Path) -> dict[str, pa.Table]:
    """Every part file of an output folder, read back."""
    read = {".parquet": pq.read_table, ".csv": pacsv.read_csv}
    return {path.name: read[path.suffix](path) for path in sorted(folder.glob("part-*"))}


def manifest(folder: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((folder / "_manifest.json").read_text())
    return loaded


@pytest.mark.parametrize("format", [FileFormat.PARQUET, FileFormat.CSV])
def test_dask_writes_what_the_local_engine_writes(
    settings: Settings, scheduler: str, tmp_path: Path, iris: pd.DataFrame, format: FileFormat
) -> None:
    """Several files of several parts each (Parquet row groups; one part per CSV file)."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        rows = iris.iloc[i * 1000 : (i + 1) * 1000]
        if format is FileFormat.PARQUET:
            table = pa.Table.from_pandas(rows, preserve_index=False)
            pq.write_table(table, folder / f"{i}.parquet", row_group_size=300)
        else:
            rows.to_csv(folder / f"{i}.csv", index=False)
    outputs = {engine: tmp_path / f"out-{engine}" for engine in Engine}
    seen: list[int] = []
    for engine, out in outputs.items():
        job = BatchJob("iris", str(folder), str(out), ("row_id",), format=format, chunk_rows=128)
        address = scheduler if engine is Engine.DASK else None
        summary = run(settings, job, lambda _plan: seen.append, engine, address)
        assert (summary.rows, summary.parts_skipped) == (3000, 0)
    local, dask = (outputs[Engine.LOCAL], outputs[Engine.DASK])
    assert sum(seen) == 6000
    assert sorted(p.name for p in dask.iterdir()) == sorted(p.name for p in local.iterdir())
    assert (dask / "_SUCCESS").exists()
    assert manifest(dask) == manifest(local)
    parts = written(local)
    assert len(parts) == (12 if format is FileFormat.PARQUET else 3)
    scored = written(dask)
    assert scored.keys() == parts.keys()
    for name, table in parts.items():
        assert scored[name].equals(table), name


def test_the_model_is_loaded_once_per_worker(
    settings: Settings, scheduler: str, watched: Path, tmp_path: Path
) -> None:
    modelport.log_model(Watched(), "watched", np.ones((2, 3)), settings=settings)
    folder = csv_parts(tmp_path / "in", 8, 10)
    for load in watched.glob("load-*"):
        load.unlink()
    job = BatchJob("watched", str(folder), str(tmp_path / "out"), ("id",), chunk_rows=4)
    summary = run(settings, job, engine=Engine.DASK, scheduler=scheduler)
    assert (summary.parts, summary.rows) == (8, 80)
    with Client(scheduler, set_as_default=False) as client:
        workers = sorted(client.run(os.getpid).values())
    loads = sorted(int(load.name.split("-")[1]) for load in watched.glob("load-*"))
    assert loads == workers
    scored = pd.read_parquet(tmp_path / "out")
    assert np.array_equal(scored.sort_values("id")["prediction"], 3.0 + np.arange(80) // 10)


def test_a_model_error_fails_the_run_and_the_next_run_resumes(
    settings: Settings, scheduler: str, watched: Path, tmp_path: Path
) -> None:
    modelport.log_model(Watched(), "watched", np.ones((2, 3)), settings=settings)
    folder = csv_parts(tmp_path / "in", 8, 10, poisoned=7)
    out = tmp_path / "out"
    job = BatchJob("watched", str(folder), str(out), ("id",), chunk_rows=4)
    (watched / "broken").touch()
    try:
        with pytest.raises(ModelError):
            run(settings, job, engine=Engine.DASK, scheduler=scheduler)
    finally:
        (watched / "broken").unlink()
    kept = sorted(p.name for p in out.glob("part-*"))
    assert kept  # the parts before the last: scheduled first, finished before it failed
    assert "part-00007.parquet" not in kept
    assert not list(out.glob("*.inprogress"))
    assert not (out / "_SUCCESS").exists()

    summary = run(settings, job, engine=Engine.DASK, scheduler=scheduler)
    assert summary.parts_skipped == len(kept)
    assert summary.rows == (8 - len(kept)) * 10
    scored = pd.read_parquet(out).sort_values("id")
    assert scored["id"].tolist() == list(range(80))
    assert scored["prediction"].iloc[75] == 2.0
    assert (out / "_SUCCESS").exists()


def test_a_worker_killed_mid_run_costs_only_its_part(
    settings: Settings, scheduler: str, tmp_path: Path
) -> None:
    """Dask runs the killed worker's task again elsewhere; parts already written are not
    scored again (each counted once) and no unfinished file is left."""
    modelport.log_model(SlowPoisonModel(), "slow", np.ones((2, 3)), settings=settings)
    folder = csv_parts(tmp_path / "in", 12, 40)
    out = tmp_path / "out"
    job = BatchJob("slow", str(folder), str(out), ("id",), chunk_rows=8)
    with Client(scheduler, set_as_default=False) as client:
        victim = min(client.run(os.getpid).values())
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(run, settings, job, None, Engine.DASK, scheduler)
        deadline = time.monotonic() + 30
        while len(list(out.glob("part-*.parquet"))) < 3:
            assert not running.done(), running.result()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(victim, signal.SIGKILL)
        summary = running.result(timeout=60)
    assert (summary.parts, summary.rows) == (12, 480)
    scored = pd.read_parquet(out)
    assert sorted(scored["id"]) == list(range(480))
    assert np.array_equal(scored["prediction"], 3.0 + scored["id"] // 40)
    assert not list(out.glob("*.inprogress"))
    with Client(scheduler, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=30)  # its nanny restarts it, for the next tests


def test_a_model_that_cannot_load_on_the_workers_fails_before_any_part(
    settings: Settings, scheduler: str, watched: Path, tmp_path: Path
) -> None:
    modelport.log_model(Watched(), "watched", np.ones((2, 3)), settings=settings)
    pd.DataFrame({"a": [1.0], "b": [2.0], "c": [3.0]}).to_csv(tmp_path / "in.csv", index=False)
    job = BatchJob("watched", str(tmp_path / "in.csv"), str(tmp_path / "out"))
    (watched / "unloadable").touch()
    try:
        with pytest.raises(ModelLoadError, match="cannot load"):
            run(settings, job, engine=Engine.DASK, scheduler=scheduler)
    finally:
        (watched / "unloadable").unlink()
    assert not list((tmp_path / "out").glob("part-*"))
    assert run(settings, job, engine=Engine.DASK, scheduler=scheduler).rows == 1


def test_the_command_line_sends_parts_to_the_scheduler(
    cli: Cli, scheduler: str, tmp_path: Path, iris: pd.DataFrame
) -> None:
    table = pa.Table.from_pandas(iris, preserve_index=False)
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=1000)
    out = tmp_path / "out"
    done = cli("batch", "-m", "iris", "-i", str(tmp_path / "in.parquet"), "-o", str(out),
               "--passthrough", "row_id", "--engine", "dask", "--scheduler", scheduler,
               "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["parts"], summary["rows"]) == (3, 3000)
    assert len(pd.read_parquet(out)) == 3000
    assert (out / "_SUCCESS").exists()


def test_the_dask_engine_without_a_scheduler_is_refused_before_any_work(
    cli: Cli, tmp_path: Path, iris: pd.DataFrame
) -> None:
    iris.to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out"
    done = cli("batch", "-m", "iris", "-i", str(tmp_path / "in.csv"), "-o", str(out),
               "--engine", "dask")  # fmt: skip
    assert done.returncode == 1
    assert "error: Configuration error:" in done.stderr
    assert "--scheduler tcp://host:8786" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_a_scheduler_that_does_not_answer_is_a_configuration_error(
    settings: Settings, tmp_path: Path, iris: pd.DataFrame
) -> None:
    iris.to_csv(tmp_path / "in.csv", index=False)
    job = BatchJob("iris", str(tmp_path / "in.csv"), str(tmp_path / "out"), ("row_id",))
    nobody = f"tcp://127.0.0.1:{free_port()}"
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
        pytest.raises(ConfigurationError, match=f"no Dask scheduler reached at {nobody}"),
    ):
        run(settings, job, engine=Engine.DASK, scheduler=nobody)
