"""Asynchronous jobs through the served app: submit, poll, answer, cancel, who may see what."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

import modelport
from modelport.config import AuthMode, Settings
from modelport.registry import Registry
from modelport.security.keys import KeyHasher, KeyStore, Scope
from modelport.security.secret import server_secret
from tests.api.conftest import serving
from tests.e2e.doubles import SlowPoisonModel

ROWS = {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}
JOBS = "/v1/models/iris/jobs"


def wait_finished(client: TestClient, location: str, timeout_s: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(location).json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.02)


@pytest.fixture
def client(settings: Settings, iris_served: np.ndarray) -> Iterator[TestClient]:
    with serving(settings, ["iris"]) as client:
        yield client


def test_a_v1_job_answers_what_the_predict_route_answers(client: TestClient) -> None:
    submitted = client.post(JOBS, json=ROWS, headers={"X-Request-Id": "submit-1"})
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    assert submitted.headers["location"] == f"/v1/jobs/{job['id']}"
    assert (job["state"], job["format"], job["model"]) == ("queued", "v1", "iris")
    assert job["request_id"] == "submit-1"

    finished = wait_finished(client, submitted.headers["location"])
    sync = client.post("/v1/models/iris:predict", json=ROWS).json()
    assert finished["state"] == "succeeded", finished
    assert finished["served_by"] == {"model": "iris", "version": 1}
    assert finished["progress"] == {"rows_done": 2, "rows_total": 2}
    assert finished["result"]["body"] == sync
    assert finished["attempts"] == 1
    assert finished["error"] is None
    raw = client.get(finished["result"]["url"])
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "application/json"
    assert raw.json() == sync
    listed = client.get("/v1/jobs", params={"model": "iris"}).json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]
    assert "body" not in listed[0]["result"]  # lists stay small


def test_a_v2_job_is_recognised_and_answers_in_json_even_when_binary_was_asked(
    client: TestClient,
) -> None:
    body = {
        "inputs": [
            {"name": "input", "shape": [2, 4], "datatype": "FP64", "data": ROWS["instances"]}
        ],
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
    }
    job = wait_finished(client, client.post(JOBS, json=body).headers["location"])
    assert (job["format"], job["state"]) == ("v2", "succeeded"), job
    answer = job["result"]["body"]
    sync = client.post(
        "/v2/models/iris/infer", json={**body, "outputs": [{"name": "probabilities"}]}
    ).json()
    assert answer["outputs"] == sync["outputs"]
    assert answer["model_name"] == "iris"
    assert answer["model_version"] == "1"


def test_an_mlflow_csv_job_answers_what_invocations_answers(
    settings: Settings, mixed_served: pd.DataFrame
) -> None:
    csv = mixed_served.head(5).to_csv(index=False).encode()
    with serving(settings, ["mixed"]) as client:
        submitted = client.post(
            "/v1/models/mixed/jobs", content=csv, headers={"Content-Type": "text/csv"}
        )
        assert submitted.status_code == 202, submitted.text
        job = wait_finished(client, submitted.headers["location"])
        sync = client.post(
            "/models/mixed/invocations", content=csv, headers={"Content-Type": "text/csv"}
        )
    assert (job["format"], job["state"]) == ("mlflow", "succeeded"), job
    assert job["result"]["body"] == sync.json()


def test_a_large_job_runs_in_pieces_and_reports_progress(
    make_settings: Callable[..., Settings], iris_served: np.ndarray
) -> None:
    settings = make_settings(job_piece_rows=16)
    rows = iris_served.tolist()
    with serving(settings, ["iris"]) as client:
        job = wait_finished(client, client.post(JOBS, json={"instances": rows}).headers["location"])
        sync = client.post("/v1/models/iris:predict", json={"instances": rows}).json()
    assert job["progress"] == {"rows_done": 150, "rows_total": 150}
    assert job["result"]["body"] == sync


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        (JOBS, b"{not json", 400, "malformed_request"),
        (JOBS, b'{"instances": [[1, 2]]}', 422, "invalid_input"),
        ("/v1/models/nope/jobs", b'{"instances": [[1, 2, 3, 4]]}', 404, "model_not_found"),
        (JOBS + "?format=v3", b'{"instances": [[1, 2, 3, 4]]}', 422, "invalid_input"),
        ("/v1/models/iris/versions/7/jobs", b'{"instances": [[1, 2, 3, 4]]}', 404, None),
        ("/v1/models/iris/versions/x1/jobs", b'{"instances": [[1, 2, 3, 4]]}', 404, None),
    ],
)
def test_a_job_that_could_never_succeed_is_refused_at_once(
    client: TestClient, path: str, body: bytes, status: int, code: str | None
) -> None:
    answer = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    if code is not None:
        assert answer.json()["code"] == code
    assert client.get("/v1/jobs").json()["jobs"] == []


def test_a_version_path_pins_the_version(client: TestClient) -> None:
    submitted = client.post("/v1/models/iris/versions/1/jobs", json=ROWS)
    job = wait_finished(client, submitted.headers["location"])
    assert job["model"] == "iris/1"
    assert job["served_by"]["version"] == 1


def test_a_queued_job_is_cancelled_at_once_and_only_once(
    make_settings: Callable[..., Settings], iris_served: np.ndarray
) -> None:
    """A server with job_workers=0 accepts jobs but leaves running them to others."""
    with serving(make_settings(job_workers=0), ["iris"]) as client:
        location = client.post(JOBS, json=ROWS).headers["location"]
        time.sleep(0.2)
        assert client.get(location).json()["state"] == "queued"
        cancelled = client.delete(location)
        assert cancelled.status_code == 202
        assert cancelled.json()["state"] == "cancelled"
        again = client.delete(location)
        assert again.status_code == 409
        assert "cancelled" in again.json()["detail"]
        result = client.get(location + "/result")
        assert result.status_code == 409
        assert result.json()["code"] == "conflict"
        assert client.get("/v1/jobs/0123abcd").status_code == 404


def test_a_running_job_stops_at_its_next_piece(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(job_piece_rows=1)
    modelport.log_model(SlowPoisonModel(), "slow", np.ones((2, 3)), settings=settings)
    with serving(settings, ["slow"]) as client:
        body = {"instances": np.ones((200, 3)).tolist()}
        location = client.post("/v1/models/slow/jobs", json=body).headers["location"]
        deadline = time.monotonic() + 10
        while client.get(location).json()["progress"]["rows_done"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        running = client.delete(location).json()
        assert running["state"] == "running"
        assert running["cancel_requested"]
        job = wait_finished(client, location)
    assert job["state"] == "cancelled"
    assert job["progress"]["rows_done"] < 200


def test_a_model_error_fails_the_job_without_a_retry_or_the_cause(
    settings: Settings,
) -> None:
    modelport.log_model(SlowPoisonModel(), "slow", np.ones((2, 3)), settings=settings)
    with serving(settings, ["slow"]) as client:
        body = {"instances": [[1, 1, 1], [-1, -1, -1]]}
        job = wait_finished(
            client, client.post("/v1/models/slow/jobs", json=body).headers["location"]
        )
        metrics = client.get("/metrics").text
    assert job["state"] == "failed"
    assert job["attempts"] == 1
    assert job["error"]["status"] == 500
    assert job["id"] in job["error"]["detail"]
    assert "poisoned" not in job["error"]["detail"]
    assert job["result"] is None
    assert 'protocol="job"' in metrics


def test_jobs_are_logged_and_metered_like_requests(
    make_settings: Callable[..., Settings], iris_served: np.ndarray
) -> None:
    settings = make_settings(prediction_log=True, prediction_log_flush_s=0.01)
    with serving(settings, ["iris"]) as client:
        job = wait_finished(client, client.post(JOBS, json=ROWS).headers["location"])
        deadline = time.monotonic() + 10
        while not (
            logged := client.get("/api/predictions", params={"request_id": job["id"]}).json()[
                "predictions"
            ]
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        metrics = client.get("/metrics").text
    assert logged[0]["protocol"] == "job"
    assert logged[0]["rows"] == 2
    assert any(
        line.startswith("modelport_requests_total") and 'protocol="job"' in line
        for line in metrics.splitlines()
    ), metrics


@pytest.fixture
def secured(settings: Settings, registry: Registry, iris_served: np.ndarray) -> Settings:
    return settings.model_copy(update={"auth": AuthMode.REQUIRED, "auth_refresh_s": 0.05})


def test_with_keys_a_job_is_seen_by_its_submitter_and_admins_only(
    secured: Settings, registry: Registry
) -> None:
    store = KeyStore(registry.database, KeyHasher(lambda: server_secret(secured)))
    mine, other = store.create(Scope.PREDICT).token, store.create(Scope.PREDICT).token
    admin, reader = store.create(Scope.ADMIN).token, store.create(Scope.READ).token
    with serving(secured, ["iris"]) as client:
        assert client.post(JOBS, json=ROWS).status_code == 401
        refused = client.post(JOBS, json=ROWS, headers={"X-API-Key": reader})
        assert refused.status_code == 403
        location = client.post(JOBS, json=ROWS, headers={"X-API-Key": mine}).headers["location"]
        for token in (other, reader):
            assert client.get(location, headers={"X-API-Key": token}).status_code == 404
            assert client.get("/v1/jobs", headers={"X-API-Key": token}).json()["jobs"] == []
        assert client.delete(location, headers={"X-API-Key": other}).status_code == 404
        assert client.get(location, headers={"X-API-Key": mine}).status_code == 200
        assert client.get(location, headers={"X-API-Key": admin}).status_code == 200
        listed = client.get("/v1/jobs", headers={"X-API-Key": admin}).json()["jobs"]
        assert len(listed) == 1
