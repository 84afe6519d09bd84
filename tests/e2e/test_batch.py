"""`modelport batch` on real files: Parquet and CSV in and out, tensor and column models,
passthrough columns, resuming after a kill, refusing to mix runs, S3. Peak memory as the
input grows is measured by bench/batch_scoring.py."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import modelport
from modelport.config import Settings
from modelport.jobs.batch.parts import CSV_BLOCK_BYTES
from modelport.jobs.batch.scoring import BatchJob, run
from tests.e2e.conftest import settings_env
from tests.e2e.doubles import SlowPoisonModel

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def iris(settings: Settings, iris_logreg: LogisticRegression, iris_data: Any) -> pd.DataFrame:
    """iris/1 registered; its rows 20 times over with a row_id, in a new order."""
    X = iris_data[0]
    modelport.log_model(iris_logreg, "iris", X[:20], settings=settings)
    rows = np.random.default_rng(0).permutation(np.tile(X, (20, 1)))
    frame = pd.DataFrame(rows, columns=["f0", "f1", "f2", "f3"])
    frame.insert(0, "row_id", np.arange(len(frame)))
    return frame


def test_parquet_row_groups_become_parts_and_match_in_process_predictions(
    cli: Cli, tmp_path: Path, iris: pd.DataFrame, iris_logreg: LogisticRegression
) -> None:
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pandas(iris, preserve_index=False), source, row_group_size=700)
    out = tmp_path / "out"
    done = cli("batch", "-m", "iris", "-i", str(source), "-o", str(out), "--passthrough",
               "row_id", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["parts"], summary["rows"], summary["version"]) == (5, 3000, 1)
    assert sorted(p.name for p in out.iterdir()) == [
        "_SUCCESS",
        "_manifest.json",
        *(f"part-{i:05d}.parquet" for i in range(5)),
    ]
    scored = pq.read_table(out).to_pandas()
    assert scored.columns.tolist() == ["row_id", "label", "probabilities", "model_version"]
    assert scored["row_id"].tolist() == iris["row_id"].tolist()
    features = iris[["f0", "f1", "f2", "f3"]].to_numpy()
    assert np.array_equal(np.stack(scored["probabilities"]), iris_logreg.predict_proba(features))
    assert np.array_equal(scored["label"], iris_logreg.predict(features))
    assert set(scored["model_version"]) == {1}


def test_a_csv_folder_scored_into_csv_by_a_column_model(
    cli: Cli,
    settings: Settings,
    tmp_path: Path,
    mixed_pipeline: Pipeline,
    mixed_frame: tuple[pd.DataFrame, np.ndarray],
) -> None:
    frame = mixed_frame[0]
    modelport.log_model(mixed_pipeline, "mixed", frame.head(20), settings=settings)
    folder = tmp_path / "in"
    (folder / "nested").mkdir(parents=True)
    frame.iloc[:40].to_csv(folder / "a.csv", index=False)
    frame.iloc[40:].to_csv(folder / "nested" / "b.csv", index=False)
    (folder / "notes.txt").write_text("not an input")
    out = tmp_path / "out"
    done = cli("batch", "-m", "mixed", "-i", str(folder), "-o", str(out), "--format", "csv",
               "--outputs", "label", "--chunk-rows", "16")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "scored" in done.stdout
    scored = pd.concat(pd.read_csv(out / f"part-{i:05d}.csv") for i in range(2))
    assert scored.columns.tolist() == ["label", "model_version"]
    assert scored["label"].tolist() == mixed_pipeline.predict(frame).tolist()


def test_the_engine_is_callable_from_python(
    settings: Settings, tmp_path: Path, iris: pd.DataFrame
) -> None:
    iris.to_csv(tmp_path / "in.csv", index=False)
    job = BatchJob("iris", str(tmp_path / "in.csv"), str(tmp_path / "out"), ("row_id",))
    seen: list[int] = []
    summary = run(settings, job, lambda _plan: seen.append)
    assert summary.rows == sum(seen) == 3000
    assert summary.to_dict()["rows_per_s"] > 0


def test_bad_input_names_the_file_and_rows_and_leaves_no_partial_file(
    cli: Cli, tmp_path: Path, iris: pd.DataFrame
) -> None:
    bad = iris.astype({"f2": object})
    bad.loc[1500, "f2"] = "oops"
    bad.to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out"
    done = cli("batch", "-m", "iris", "-i", str(tmp_path / "in.csv"), "-o", str(out))
    assert done.returncode == 1
    assert "error: Invalid input:" in done.stderr
    assert "in.csv (part-00000)" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["_manifest.json"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-i", "missing.parquet"), "no such input"),
        (("-i", "notes.txt"), "unknown file type"),
        (("--passthrough", "nope"), "passthrough column(s) nope not in the input"),
        (("--passthrough", "label"), "label would be written twice"),
        (("--outputs", "score"), "unknown output(s) score"),
        (("-m", "unknown"), "unknown"),
    ],
)
def test_mistakes_are_reported_before_any_work(
    cli: Cli, tmp_path: Path, iris: pd.DataFrame, args: tuple[str, ...], message: str
) -> None:
    iris.rename(columns={"row_id": "label"}).to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / "notes.txt").write_text("x")
    defaults = {"-m": "iris", "-i": "in.csv", "-o": "out"}
    given = dict(zip(args[::2], args[1::2], strict=True))
    options = [str(x) for key, value in {**defaults, **given}.items() for x in (key, value)]
    absolute = [str(tmp_path / v) if k in ("-i", "-o") else v for k, v in zip(
        options[::2], options[1::2], strict=True) for v in [v]]  # fmt: skip
    command = [x for pair in zip(options[::2], absolute, strict=True) for x in pair]
    done = cli("batch", *command)
    assert done.returncode == 1, done.stdout
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_folder_of_another_run_is_refused_unless_overwritten(
    cli: Cli,
    settings: Settings,
    tmp_path: Path,
    iris: pd.DataFrame,
    iris_logreg: LogisticRegression,
    iris_data: Any,
) -> None:
    iris.to_csv(tmp_path / "in.csv", index=False)
    args = ("batch", "-i", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out"), "--passthrough",
            "row_id")  # fmt: skip
    assert cli(*args, "-m", "iris").returncode == 0
    modelport.log_model(iris_logreg, "iris", iris_data[0][:20], settings=settings)
    refused = cli(*args, "-m", "iris")  # now version 2: not the run that wrote the folder
    assert refused.returncode == 1
    assert "holds another run" in refused.stderr
    assert "--overwrite" in refused.stderr
    replaced = cli(*args, "-m", "iris", "--overwrite", "--json")
    assert replaced.returncode == 0, replaced.stderr
    assert json.loads(replaced.stdout)["version"] == 2
    assert set(pd.read_parquet(tmp_path / "out")["model_version"]) == {2}
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("someone's file")
    foreign = cli("batch", "-m", "iris", "-i", str(tmp_path / "in.csv"), "--passthrough",
                  "row_id", "-o", str(tmp_path / "other"))  # fmt: skip
    assert foreign.returncode == 1
    assert "holds other files" in foreign.stderr


def test_a_folder_of_another_input_is_refused_before_the_input_is_read(
    cli: Cli, tmp_path: Path, iris: pd.DataFrame
) -> None:
    source = tmp_path / "in.csv"
    iris.to_csv(source, index=False)
    args = ("batch", "-m", "iris", "-i", str(source), "-o", str(tmp_path / "out"),
            "--passthrough", "row_id")  # fmt: skip
    assert cli(*args).returncode == 0
    source.write_text("")  # another input now, and one arrow could not read a schema from
    refused = cli(*args)
    assert refused.returncode == 1
    assert "holds another run" in refused.stderr
    unreadable = cli(*args, "--overwrite")  # the folder may go: now the input is read
    assert unreadable.returncode == 1
    assert "in.csv is not a CSV file with a header: Empty CSV file" in unreadable.stderr
    assert "Traceback" not in unreadable.stderr


def test_a_csv_longer_than_its_first_block_is_scored_whole(
    cli: Cli, tmp_path: Path, iris: pd.DataFrame
) -> None:
    source = tmp_path / "in.csv"
    big = pd.concat([iris] * 20, ignore_index=True)
    big["row_id"] = np.arange(len(big))
    big.to_csv(source, index=False)
    data = source.read_bytes()
    assert len(data) > CSV_BLOCK_BYTES
    assert data[CSV_BLOCK_BYTES - 1 : CSV_BLOCK_BYTES + 1].count(b"\n") == 0  # cut inside a row
    out = tmp_path / "out"
    done = cli("batch", "-m", "iris", "-i", str(source), "-o", str(out), "--passthrough", "row_id")
    assert done.returncode == 0, done.stderr
    assert sorted(pd.read_parquet(out)["row_id"]) == list(range(len(big)))


def test_a_killed_run_resumes_where_it_stopped(settings: Settings, tmp_path: Path) -> None:
    """SIGKILL mid-run, run again: the written parts are skipped, the rest scored, and the
    output is whole, with no part written twice or left half-written."""
    modelport.log_model(SlowPoisonModel(), "slow", np.ones((2, 3)), settings=settings)
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(12):
        rows = pd.DataFrame({"id": np.arange(i * 40, (i + 1) * 40), "a": 1.0, "b": 2.0, "c": i})
        rows.to_csv(folder / f"{i:02d}.csv", index=False)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "modelport", "batch", "-m", "slow", "-i", str(folder),
               "-o", str(out), "--passthrough", "id", "--chunk-rows", "8", "--json"]  # fmt: skip
    env = settings_env(settings)
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(list(out.glob("part-*.parquet"))) < 3:
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    written = len(list(out.glob("part-*.parquet")))
    assert written < 12
    assert not (out / "_SUCCESS").exists()

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["parts_skipped"] == written
    assert summary["rows"] == (12 - written) * 40
    scored = pd.read_parquet(out)
    assert sorted(scored["id"]) == list(range(480))
    assert np.array_equal(scored["prediction"], 3.0 + scored["id"] // 40)
    assert not list(out.glob("*.inprogress"))
    assert (out / "_SUCCESS").exists()


def test_input_and_output_on_s3(
    bucket: tuple[Any, str], s3_endpoint: str, settings: Settings, iris: pd.DataFrame
) -> None:
    client, name = bucket
    on_s3 = settings.model_copy(update={"s3_endpoint_url": s3_endpoint})
    body = iris.to_csv(index=False).encode()
    client.put_object(Bucket=name, Key="in/day=1/rows.csv", Body=body)
    job = BatchJob("iris", f"s3://{name}/in", f"s3://{name}/scored", ("row_id",))
    summary = run(on_s3, job)
    assert summary.rows == 3000
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=name, Prefix="scored/")["Contents"]}
    assert keys == {"scored/_SUCCESS", "scored/_manifest.json", "scored/part-00000.parquet"}
    again = run(on_s3, job)
    assert (again.parts_skipped, again.rows) == (1, 0)
