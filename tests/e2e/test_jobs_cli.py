"""`modelport jobs` and the client's job methods against a real server: submit, wait, read,
cancel, and the errors a user meets on the way."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.client import Client
from modelport.config import Settings
from modelport.errors import ConflictError, JobNotFoundError, RequestTimeoutError
from modelport.registry import Registry
from tests.e2e.conftest import free_port
from tests.e2e.doubles import SlowPoisonModel

Cli = Callable[..., Any]


def _inputs(tmp_path: Path, rows: np.ndarray) -> tuple[Path, Path]:
    """The same rows as a V1 JSON body and as an MLflow CSV (pandas' header 0,1,2,3)."""
    body = tmp_path / "rows.json"
    body.write_text(json.dumps({"instances": rows.tolist()}))
    table = tmp_path / "rows.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return body, table


def _ok(done: Any) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _failed(done: Any, message: str) -> None:
    assert done.returncode == 1, done.stdout
    assert f"error: {message}" in done.stderr
    assert "next: " in done.stderr
    assert "Traceback" not in done.stderr


def test_jobs_answer_what_predict_answers(
    cli: Cli,
    live_server: Any,
    settings: Settings,
    registry: Registry,
    tmp_path: Path,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    modelport.log_model(iris_logreg, "iris", X[:20], settings=settings)
    registry.set_alias("iris", "production", 1)
    modelport.log_model(SlowPoisonModel(), "slow", np.ones((2, 3)), settings=settings)
    url = live_server(["iris@production", "slow"], settings).url
    body, table = _inputs(tmp_path, X[:10])
    expected = _ok(cli("predict", "iris", "-i", str(body), "--url", url))
    assert expected["predictions"] == iris_logreg.predict(X[:10]).tolist()

    for source in (body, table):
        answered = cli("jobs", "submit", "iris", "-i", str(source), "--wait", "--url", url)
        assert _ok(answered) == expected, source.name
    piped = cli(
        "jobs", "submit", "iris", "-i", "-", "--wait", "--url", url, input=table.read_text()
    )
    assert _ok(piped) == expected

    job = _ok(cli("jobs", "submit", "iris/1", "-i", str(body), "--json", "--url", url))
    assert (job["model"], job["format"]) == ("iris/1", "v1")
    finished = _ok(cli("jobs", "wait", job["id"], "--json", "--url", url))
    assert finished["state"] == "succeeded"
    assert finished["result"]["body"] == expected
    assert _ok(cli("jobs", "status", job["id"], "--json", "--url", url)) == finished
    shown = cli("jobs", "status", job["id"], "--url", url)
    assert shown.returncode == 0, shown.stderr
    for cell in (job["id"], "iris/1", "succeeded", "10/10"):
        assert cell in shown.stdout
    listed = _ok(
        cli("jobs", "list", "--state", "succeeded", "--limit", "2", "--json", "--url", url)
    )
    assert [j["state"] for j in listed["jobs"]] == ["succeeded", "succeeded"]
    assert listed["jobs"][0]["id"] == job["id"]
    assert job["id"] in cli("jobs", "list", "--model", "iris", "--url", url).stdout
    answer = tmp_path / "answer.json"
    written = cli("jobs", "result", job["id"], "-o", str(answer), "--url", url)
    assert written.returncode == 0, written.stderr
    assert json.loads(answer.read_text()) == expected
    assert _ok(cli("jobs", "result", job["id"], "--url", url)) == expected

    poison = tmp_path / "poison.json"
    poison.write_text(json.dumps({"instances": [[1, 1, 1], [-1, -1, -1]]}))
    failed = cli("jobs", "submit", "slow", "-i", str(poison), "--wait", "--url", url)
    _failed(failed, "The model raised an error: ")
    assert "modelport jobs status" in failed.stderr

    with Client(url) as client:
        seen: list[dict[str, Any]] = []
        submitted = client.submit_job("iris@production", {"instances": X[:10].tolist()})
        done = client.wait_job(submitted["id"], timeout_s=30, poll_s=0.05, on_progress=seen.append)
        assert done["state"] == "succeeded"
        assert seen[-1] == done
        assert done["served_by"] == {"model": "iris", "version": 1}
        assert json.loads(client.job_result(done["id"])) == expected
        assert client.job(done["id"]) == done
        latest = client.jobs(state="succeeded", model="iris", limit=1)
        assert [j["id"] for j in latest] == [done["id"]]
        probabilities = client.submit_job(
            "iris",
            table.read_bytes(),
            content_type="text/csv",
            format="mlflow",
            output="probabilities",
        )
        answered = client.wait_job(probabilities["id"], timeout_s=30, poll_s=0.05)
        assert answered["format"] == "mlflow"
        np.testing.assert_allclose(
            answered["result"]["body"]["predictions"], iris_logreg.predict_proba(X[:10])
        )
        with pytest.raises(JobNotFoundError):
            client.job("0123abcd")


def test_queued_jobs_are_shown_and_cancelled(
    cli: Cli,
    live_server: Any,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    """A server with job_workers=0 accepts jobs and runs none: they stay queued."""
    settings = make_settings(job_workers=0)
    X, _ = iris_data
    modelport.log_model(iris_logreg, "iris", X[:20], settings=settings)
    url = live_server(["iris"], settings).url
    body, _ = _inputs(tmp_path, X[:10])

    def run(*args: str) -> Any:
        return cli("jobs", *args, "--url", url)

    submitted = run("submit", "iris", "-i", str(body))
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.split()[1]
    assert f"job {job_id} queued for iris" in submitted.stdout
    shown = run("status", job_id)
    assert "queued" in shown.stdout
    assert "0/?" in shown.stdout
    _failed(run("wait", job_id, "--timeout", "0.3"), "Request timed out: ")
    assert _ok(run("cancel", job_id, "--json"))["state"] == "cancelled"
    _failed(run("cancel", job_id), "Conflict: job")
    _failed(run("result", job_id), "Conflict: job")
    _failed(run("wait", job_id), "Job cancelled: ")
    listed = _ok(run("list", "--state", "cancelled", "--json"))
    assert [j["id"] for j in listed["jobs"]] == [job_id]

    with Client(url) as client:
        queued = client.submit_job("iris", body.read_bytes(), content_type="application/json")
        with pytest.raises(RequestTimeoutError, match="still queued"):
            client.wait_job(queued["id"], timeout_s=0.1, poll_s=0.05)
        assert client.cancel_job(queued["id"])["state"] == "cancelled"
        with pytest.raises(ConflictError):
            client.job_result(queued["id"])
        assert [j["state"] for j in client.jobs(model="iris")] == ["cancelled", "cancelled"]


def test_bad_input_and_no_server_are_plain_errors(
    cli: Cli, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    text = tmp_path / "rows.txt"
    text.write_text("5.1,3.5,1.4,0.2\n")
    unreachable = f"http://127.0.0.1:{free_port()}"
    bad = cli("jobs", "submit", "iris", "-i", str(text), "--url", unreachable)
    _failed(bad, "Invalid input: ")
    assert ".json, .csv, .parquet" in bad.stderr
    _failed(cli("jobs", "status", "abc", "--url", unreachable), "Internal error: cannot reach")
    port = free_port()
    nobody = cli("jobs", "list", settings_override=make_settings(port=port))
    _failed(nobody, "Internal error: cannot reach")
    assert f"check that a modelport server answers at http://127.0.0.1:{port}" in nobody.stderr


def test_a_batch_job_from_the_command_line_and_the_client(
    cli: Cli,
    live_server: Any,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = iris_data
    root = tmp_path / "scoring"
    root.mkdir()
    settings = make_settings(batch_roots=[str(root)], job_poll_s=0.2)
    modelport.log_model(iris_logreg, "iris", X[:20], settings=settings)
    pd.DataFrame(X, columns=["a", "b", "c", "d"]).to_csv(root / "rows.csv", index=False)
    server = live_server(["iris"], settings)
    out = root / "out"
    done = cli("jobs", "batch", "iris", "-i", str(root / "rows.csv"), "-o", str(out),
               "--format", "csv", "--outputs", "label", "--wait", "--json", "--url", server.url,
               settings_override=settings)  # fmt: skip
    job = _ok(done)
    assert job["state"] == "succeeded"
    assert job["result"]["body"]["rows"] == len(X)
    scored = pd.read_csv(out / "part-00000.csv")
    assert scored["label"].tolist() == iris_logreg.predict(X).tolist()

    outside = cli("jobs", "batch", "iris", "-i", "/etc", "-o", str(out), "--url", server.url,
                  settings_override=settings)  # fmt: skip
    _failed(outside, "Forbidden")
    assert "MODELPORT_BATCH_ROOTS" in outside.stderr
    again = Client(server.url).submit_batch_job("iris", str(root / "rows.csv"), str(out))
    assert again["kind"] == "batch"
