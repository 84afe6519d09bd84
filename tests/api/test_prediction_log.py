"""The prediction log on the real app: every transport's requests land in the database with
who answered and how fast; personal fields are masked before anything is written; sampling,
the buffer bound and a graceful stop behave as documented."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelport.config import Settings


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(allow_remote_admin=True, prediction_log=True, prediction_log_flush_s=0)


def logged(client: Any, **query: Any) -> list[dict[str, Any]]:
    answer = client.get("/api/predictions", params=query)
    assert answer.status_code == 200, answer.text
    entries: list[dict[str, Any]] = answer.json()["predictions"]
    return entries


def logged_eventually(client: Any, count: int, **query: Any) -> list[dict[str, Any]]:
    """The log is written off the request's path: poll until ``count`` entries are there."""
    deadline = time.monotonic() + 10
    while len(entries := logged(client, **query)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return entries


def metric(client: Any, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_every_transport_is_logged_with_who_answered(serve: Any, iris_served: np.ndarray) -> None:
    rows = iris_served[:2].tolist()
    with serve(["iris"]) as client:
        v1 = client.post(
            "/v1/models/iris:predict",
            json={"instances": rows},
            headers={"x-request-id": "req-v1", "x-unit-id": "user-7"},
        )
        v2 = client.post(
            "/v2/models/iris/infer",
            json={
                "id": "req-v2",
                "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": rows}],
            },
            headers={"x-request-id": "req-v2"},
        )
        mlflow = client.post(
            "/invocations", json={"instances": rows}, headers={"x-request-id": "req-mlflow"}
        )
        bad = client.post(
            "/v1/models/iris:predict",
            json={"instances": [[1.0, "x", 2.0, 3.0]]},
            headers={"x-request-id": "req-bad"},
        )
        assert [v1.status_code, v2.status_code, mlflow.status_code] == [200, 200, 200]
        assert bad.status_code == 422
        entries = logged_eventually(client, 4)

    by_id = {e["request_id"]: e for e in entries}
    assert set(by_id) == {"req-v1", "req-v2", "req-mlflow", "req-bad"}
    assert [by_id[r]["protocol"] for r in ("req-v1", "req-v2", "req-mlflow")] == [
        "v1",
        "v2",
        "mlflow",
    ]
    first = by_id["req-v1"]
    assert (first["model"], first["version"], first["unit_id"]) == ("iris", 1, "user-7")
    assert (first["status"], first["rows"], first["error"]) == (200, 2, None)
    assert first["latency_ms"] > 0
    assert list(first["inputs"].values()) == [rows]  # iris takes one tensor of 4 features
    assert [len(values) for values in first["outputs"].values()] == [2] * len(first["outputs"])
    assert first["outputs"]
    assert by_id["req-bad"]["status"] == 422
    assert by_id["req-bad"]["error"] == "invalid_input"
    assert by_id["req-bad"]["inputs"] is None


def test_queries_filter_and_follow(serve: Any, iris_served: np.ndarray) -> None:
    with serve(["iris"]) as client:
        for n in range(5):
            client.post(
                "/v1/models/iris:predict",
                json={"instances": iris_served[n : n + 1].tolist()},
                headers={"x-request-id": f"req-{n}"},
            )
        newest_first = logged_eventually(client, 5)
        assert [e["request_id"] for e in newest_first] == [f"req-{n}" for n in range(4, -1, -1)]
        assert [e["request_id"] for e in logged(client, request_id="req-3")] == ["req-3"]
        assert logged(client, model="other") == []
        assert len(logged(client, model="iris", version=1, since="1h")) == 5
        assert logged(client, until="1h") == []
        after = logged(client, after_id=newest_first[2]["id"])
        assert [e["request_id"] for e in after] == ["req-3", "req-4"]
        assert client.get("/api/predictions", params={"since": "yesterday"}).status_code == 422


def test_personal_fields_never_reach_storage(
    make_settings: Callable[..., Settings], serve: Any, mixed_served: pd.DataFrame
) -> None:
    secret_city = "zz-secret-city-7781"
    secret_member = "zz-secret-member-3390"
    settings = make_settings(
        allow_remote_admin=True,
        prediction_log=True,
        prediction_log_flush_s=0,
        pii_fields={"city": "hash", "member": "drop", "income": "mask"},
        pii_salt="a-salt-for-this-test",
    )
    record = {"age": 41, "income": 61_234.5, "city": secret_city, "member": secret_member}
    with serve(["mixed"], settings=settings) as client:
        answer = client.post("/v1/models/mixed:predict", json={"instances": [record, record]})
        assert answer.status_code == 200, answer.text
        [entry] = logged_eventually(client, 1)

    expected = hmac.new(b"a-salt-for-this-test", secret_city.encode(), hashlib.sha256)
    assert entry["inputs"] == {
        "age": [41, 41],
        "income": ["****", "****"],
        "city": [expected.hexdigest()[:32]] * 2,
    }
    stored = b"".join(p.read_bytes() for p in Path(settings.home).rglob("*") if p.is_file())
    for raw in (secret_city, secret_member, "61234.5"):
        assert raw.encode() not in stored


def test_sampling_per_model(
    make_settings: Callable[..., Settings], serve: Any, iris_served: np.ndarray
) -> None:
    settings = make_settings(
        allow_remote_admin=True,
        prediction_log=True,
        prediction_log_flush_s=0,
        prediction_log_sample_rate=1.0,
        prediction_log_sampling={"iris": 0.0},
    )
    with serve(["iris"], settings=settings) as client:
        for _ in range(20):
            client.post("/v1/models/iris:predict", json={"instances": iris_served[:1].tolist()})
        client.get("/api/models")  # not an inference request: never logged
        assert logged(client) == []


def test_a_graceful_stop_writes_what_is_queued_and_a_full_buffer_drops_and_counts(
    make_settings: Callable[..., Settings], serve: Any, iris_served: np.ndarray
) -> None:
    # nothing is written before the stop: the flush waits far longer than the test
    settings = make_settings(
        allow_remote_admin=True,
        prediction_log=True,
        prediction_log_flush_s=3600,
        prediction_log_buffer=30,
    )
    with serve(["iris"], settings=settings) as client:
        for n in range(40):
            client.post(
                "/v1/models/iris:predict",
                json={"instances": iris_served[:1].tolist()},
                headers={"x-request-id": f"req-{n}"},
            )
        assert logged(client) == []
        assert metric(client, "modelport_prediction_log_buffer") == 30
        assert metric(client, "modelport_observer_dropped_total", observer="prediction_log") == 10

    with serve(["iris"], settings=settings) as client:
        entries = logged(client, limit=100)
    assert sorted(e["request_id"] for e in entries) == sorted(f"req-{n}" for n in range(30))


def test_parquet_files_by_day_hold_every_entry_masked(
    make_settings: Callable[..., Settings], serve: Any, mixed_served: pd.DataFrame, tmp_path: Path
) -> None:
    import pyarrow.dataset as ds

    lake = tmp_path / "lake"
    settings = make_settings(
        prediction_log=True,
        prediction_log_flush_s=0,
        prediction_log_parquet_uri=str(lake),
        pii_fields={"city": "drop"},
    )
    records = mixed_served.head(3).to_dict(orient="records")
    with serve(["mixed"], settings=settings) as client:
        for n, record in enumerate(records):
            record["city"] = f"zz-secret-{n}"
            client.post(
                "/v1/models/mixed:predict",
                json={"instances": [record]},
                headers={"x-request-id": f"req-{n}"},
            )
    # written at the stop: far fewer rows than a file gathers, and long before its interval
    [day] = [p.name for p in lake.iterdir()]
    assert day == f"date={time.strftime('%Y-%m-%d', time.gmtime())}"
    table = ds.dataset(lake, format="parquet", partitioning="hive").to_table()
    assert sorted(table.column("request_id").to_pylist()) == ["req-0", "req-1", "req-2"]
    first = table.to_pylist()[0]
    assert (first["model"], first["version"], first["status"], first["shadow"]) == (
        "mixed",
        1,
        200,
        False,
    )
    assert set(json.loads(first["inputs"])) == {"age", "income", "member"}
    assert not any(p.suffix == ".tmp" for p in lake.rglob("*"))
    stored = b"".join(p.read_bytes() for p in lake.rglob("*") if p.is_file())
    assert b"zz-secret" not in stored
