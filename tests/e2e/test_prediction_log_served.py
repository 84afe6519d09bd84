"""The prediction log of a real server: SIGTERM with a full queue loses nothing, across
workers, and `modelport logs` reads and follows what was written."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.config import Settings
from tests.e2e.conftest import settings_env


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(prediction_log=True)


@pytest.fixture
def iris(
    settings: Settings, iris_logreg: LogisticRegression, iris_data: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    X, _ = iris_data
    modelport.log_model(iris_logreg, "iris", X[:20], settings=settings)
    return X


def test_sigterm_with_a_full_queue_loses_nothing(
    live_server: Any, settings: Settings, cli: Any, iris: np.ndarray
) -> None:
    # two workers, and nothing written before the stop: every request is still queued
    held = settings.model_copy(update={"workers": 2, "prediction_log_flush_s": 3600.0})
    server = live_server(["iris"], held)
    ids = [f"req-{n:03d}" for n in range(300)]

    def send(request_id: str) -> int:
        answer = httpx.post(
            f"{server.url}/v1/models/iris:predict",
            json={"instances": iris[:1].tolist()},
            headers={"x-request-id": request_id},
            timeout=30,
        )
        return answer.status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(send, ids)) == {200}
    listed = cli("logs", "--json", "--limit", "1000")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == ""

    assert server.terminate() in (0, -15)
    listed = cli("logs", "--json", "--limit", "1000")
    assert listed.returncode == 0, listed.stderr
    entries = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(e["request_id"] for e in entries) == ids
    assert {(e["model"], e["version"], e["status"]) for e in entries} == {("iris", 1, 200)}


def test_logs_filters_and_follows(
    live_server: Any, settings: Settings, cli: Any, iris: np.ndarray
) -> None:
    server = live_server(["iris"], settings.model_copy(update={"prediction_log_flush_s": 0.0}))

    def send(request_id: str) -> None:
        httpx.post(
            f"{server.url}/v1/models/iris:predict",
            json={"instances": iris[:2].tolist()},
            headers={"x-request-id": request_id},
            timeout=30,
        ).raise_for_status()

    send("before-follow")
    follower = subprocess.Popen(
        [sys.executable, "-m", "modelport", "logs", "--follow", "--json", "--limit", "1"],
        env=settings_env(settings),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        deadline = time.monotonic() + 20
        while json.loads(follower.stdout.readline())["request_id"] != "before-follow":
            assert time.monotonic() < deadline
        send("while-following")
        followed = json.loads(follower.stdout.readline())
        assert followed["request_id"] == "while-following"
        assert followed["rows"] == 2
    finally:
        follower.terminate()
        follower.wait(timeout=10)
        if follower.stdout is not None:
            follower.stdout.close()

    shown = cli("logs", "--request-id", "while-following")
    assert shown.returncode == 0, shown.stderr
    assert "while-following v1 iris/1 200" in shown.stdout
    assert "before-follow" not in shown.stdout
    assert cli("logs", "--since", "tomorrow").returncode == 1

    # ground truth for the followed request's two rows: `modelport quality` reads it back
    truths = {"request_id": "while-following", "truths": [0, 2]}
    assert httpx.post(f"{server.url}/v1/feedback", json=truths).json() == {
        "accepted": 2,
        "unmatched": 0,
    }
    judged = cli("quality", "iris", "--json")
    assert judged.returncode == 0, judged.stderr
    quality = json.loads(judged.stdout)["quality"]
    assert (quality["kind"], quality["rows"]) == ("classification", 2)
    assert quality["metrics"]["accuracy"] in (0.0, 0.5, 1.0)
    assert "labelled rows" in cli("quality", "iris").stdout


@pytest.mark.s3
def test_parquet_files_in_s3(
    live_server: Any,
    settings: Settings,
    iris: np.ndarray,
    bucket: tuple[Any, str],
    s3_endpoint: str,
) -> None:
    client, name = bucket
    lake = settings.model_copy(
        update={
            "prediction_log_parquet_uri": f"s3://{name}/predictions",
            "s3_endpoint_url": s3_endpoint,
        }
    )
    server = live_server(["iris"], lake)
    for n in range(5):
        httpx.post(
            f"{server.url}/v1/models/iris:predict",
            json={"instances": iris[:1].tolist()},
            headers={"x-request-id": f"req-{n}"},
        ).raise_for_status()
    assert server.terminate() in (0, -15)

    keys = [o["Key"] for o in client.list_objects_v2(Bucket=name)["Contents"]]
    assert len(keys) == 1
    assert keys[0].startswith(f"predictions/date={time.strftime('%Y-%m-%d', time.gmtime())}/")
    assert keys[0].endswith(".parquet")
    import pyarrow.parquet as pq

    body = client.get_object(Bucket=name, Key=keys[0])["Body"].read()
    table = pq.read_table(io.BytesIO(body))
    assert sorted(table.column("request_id").to_pylist()) == [f"req-{n}" for n in range(5)]
