"""Batch runs submitted over HTTP: scored by the server's own data plane into a folder inside
``MODELPORT_BATCH_ROOTS``, answered with the run's summary; refused outside those folders.
(On a Celery worker: tests/e2e/test_jobs_celery.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings
from tests.api.conftest import serving
from tests.api.test_jobs_api import wait_finished

BATCH_JOBS = "/v1/models/iris/batch-jobs"


@pytest.fixture
def scoring(
    make_settings: Any, tmp_path: Path, iris_logreg: LogisticRegression, iris_data: Any
) -> tuple[Settings, Path, pd.DataFrame]:
    """iris/1, and 600 of its rows with a row_id in three row groups under the batch root."""
    root = tmp_path / "scoring"
    settings = make_settings(batch_roots=[str(root)], job_poll_s=0.2)
    modelport.log_model(iris_logreg, "iris", iris_data[0][:20], settings=settings)
    frame = pd.DataFrame(np.tile(iris_data[0], (4, 1)), columns=["f0", "f1", "f2", "f3"])
    frame.insert(0, "row_id", np.arange(len(frame)))
    (root / "in").mkdir(parents=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, root / "in" / "rows.parquet", row_group_size=200)
    return settings, root, frame


def test_a_batch_job_scores_into_its_folder_and_answers_with_the_summary(
    scoring: tuple[Settings, Path, pd.DataFrame], iris_logreg: Any
) -> None:
    settings, root, frame = scoring
    spec = {"input": str(root / "in"), "output": str(root / "out"), "passthrough": ["row_id"]}
    with serving(settings, ["iris"]) as client:
        answer = client.post(BATCH_JOBS, json=spec)
        assert answer.status_code == 202, answer.text
        assert answer.json()["kind"] == "batch"
        job = wait_finished(client, answer.headers["location"])
    assert job["state"] == "succeeded", job
    assert job["served_by"] == {"model": "iris", "version": 1}
    assert job["progress"]["rows_done"] == len(frame)
    summary = job["result"]["body"]
    assert (summary["rows"], summary["parts"], summary["version"]) == (600, 3, 1)
    scored = pq.read_table(root / "out").to_pandas().sort_values("row_id")
    features = frame[["f0", "f1", "f2", "f3"]].to_numpy()
    assert np.array_equal(scored["label"], iris_logreg.predict(features))
    assert (root / "out" / "_SUCCESS").exists()


OUTSIDE = [
    ({"output": "/tmp/elsewhere"}, "output '/tmp/elsewhere' is outside"),
    ({"input": "{root}/../secrets"}, "outside the folders batch jobs may use"),
    ({"input": "s3://bucket/in"}, "input 's3://bucket/in' is outside"),
]


def test_a_batch_job_may_not_leave_the_batch_roots(
    scoring: tuple[Settings, Path, pd.DataFrame],
) -> None:
    settings, root, _ = scoring
    with serving(settings, ["iris"]) as client:
        for where, detail in OUTSIDE:
            spec = {"input": str(root / "in"), "output": str(root / "out")}
            spec.update({k: v.format(root=root) for k, v in where.items()})
            answer = client.post(BATCH_JOBS, json=spec)
            assert answer.status_code == 403, answer.text
            assert detail in answer.json()["detail"]
        assert client.get("/v1/jobs").json()["jobs"] == []


def test_a_server_without_batch_roots_takes_no_batch_job_and_names_unknown_models(
    scoring: tuple[Settings, Path, pd.DataFrame],
) -> None:
    settings, root, _ = scoring
    spec = {"input": str(root / "in"), "output": str(root / "out")}
    with serving(settings, ["iris"]) as client:
        unknown = client.post("/v1/models/nope/batch-jobs", json=spec)
        assert unknown.status_code == 404, unknown.text
        typo = client.post(BATCH_JOBS, json={**spec, "outptu": "x"})
        assert typo.status_code == 422, typo.text
    with serving(settings.model_copy(update={"batch_roots": []}), ["iris"]) as closed:
        refused = closed.post(BATCH_JOBS, json=spec)
        assert refused.status_code == 403
        assert "MODELPORT_BATCH_ROOTS" in refused.json()["detail"]


def test_a_batch_job_over_missing_input_fails_with_the_reason(
    scoring: tuple[Settings, Path, pd.DataFrame],
) -> None:
    settings, root, _ = scoring
    spec = {"input": str(root / "nothing-here"), "output": str(root / "out")}
    with serving(settings, ["iris"]) as client:
        job = wait_finished(client, client.post(BATCH_JOBS, json=spec).headers["location"])
    assert job["state"] == "failed", job
    assert job["attempts"] == 1
    assert "no such input" in job["error"]["detail"]
