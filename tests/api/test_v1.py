"""KServe V1 protocol against the real app: predictions, formats, and every bad input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import modelport
from modelport.config import Settings


def test_instances_match_in_process_predict(
    serve: Any, iris_served: np.ndarray, iris_logreg: LogisticRegression
) -> None:
    rows = iris_served[:25]
    with serve(["iris"]) as client:
        labels = client.post("/v1/models/iris:predict", json={"instances": rows.tolist()})
        probabilities = client.post(
            "/v1/models/iris:predict?output=probabilities", json={"inputs": rows.tolist()}
        )
    assert labels.status_code == 200, labels.text
    assert labels.json()["predictions"] == iris_logreg.predict(rows).tolist()
    np.testing.assert_allclose(
        probabilities.json()["predictions"], iris_logreg.predict_proba(rows), rtol=1e-12
    )


def test_mixed_columns_in_every_v1_form(
    serve: Any, mixed_served: pd.DataFrame, mixed_pipeline: Pipeline
) -> None:
    frame = mixed_served.head(12)
    expected = mixed_pipeline.predict(frame).tolist()
    records = frame.to_dict(orient="records")
    bodies = [
        {"instances": records},
        {"instances": frame.to_numpy().tolist()},
        {"inputs": {name: frame[name].tolist() for name in frame.columns}},
        {"inputs": frame.to_numpy().tolist()},
    ]
    with serve(["mixed"]) as client:
        for body in bodies:
            answer = client.post("/v1/models/mixed:predict", json=body)
            assert answer.status_code == 200, (body, answer.text)
            assert answer.json()["predictions"] == expected


def test_model_listing_and_readiness(serve: Any, iris_served: np.ndarray) -> None:
    with serve(["iris"]) as client:
        assert client.get("/v1/models").json() == {"models": ["iris"]}
        assert client.get("/v1/models/iris").json() == {"name": "iris", "ready": True}
        assert client.get("/v1/models/other").status_code == 404


def test_version_and_label_paths(
    serve: Any, settings: Settings, iris_served: np.ndarray, iris_logreg: LogisticRegression
) -> None:
    registry = modelport.registry.Registry.from_settings(settings)
    registry.set_alias("iris", "production", 1)
    registry.close()
    body = {"instances": iris_served[:3].tolist()}
    with serve(["iris@production"]) as client:
        assert client.post("/v1/models/iris/versions/1:predict", json=body).status_code == 200
        assert (
            client.post("/v1/models/iris/labels/production:predict", json=body).status_code == 200
        )
        assert client.post("/v1/models/iris%40production:predict", json=body).status_code == 200
        wrong_version = client.post("/v1/models/iris/versions/7:predict", json=body)
        wrong_label = client.post("/v1/models/iris/labels/staging:predict", json=body)
    assert wrong_version.status_code == 404
    assert wrong_version.json()["code"] == "model_version_not_found"
    assert wrong_label.status_code == 404


BAD_BODIES = [
    (b"{not json", 400, ""),
    (b"[1, 2]", 400, ""),
    (b"", 400, ""),
    (b'{"instances": [[1, 2, 3, 4]], "inputs": [[1, 2, 3, 4]]}', 400, "/instances"),
    (b'{"something": 1}', 400, "/instances"),
    (b'{"instances": []}', 400, "/instances"),
    (b'{"instances": [[1, 2, 3, 4], [1, 2]]}', 400, "/instances"),
    (b'{"instances": [[1, 2, 3]]}', 422, "/instances"),
    (b'{"instances": [[1, 2, 3, "x"]]}', 422, "/instances"),
    (b'{"instances": [[1, 2, 3, true]]}', 422, "/instances"),
    (b'{"instances": [[1, 2, 3, null]]}', 422, "/instances"),
    (b'{"instances": [[1, 2, 3, NaN]]}', 400, ""),
    (b'{"instances": [[1, 2, 3, Infinity]]}', 400, ""),
    (b'{"instances": [[1, 2, 3, 1e999]]}', 400, ""),
    (b'{"instances": [[[1, 2, 3, 4]]]}', 422, "/instances"),
    (b'{"inputs": {"wrong": [[1, 2, 3, 4]]}}', 422, "/inputs/wrong"),
]


@pytest.mark.parametrize(("body", "status", "pointer"), BAD_BODIES)
def test_bad_input_is_a_clear_4xx(
    serve: Any, iris_served: np.ndarray, body: bytes, status: int, pointer: str
) -> None:
    with serve(["iris"]) as client:
        answer = client.post("/v1/models/iris:predict", content=body)
    assert answer.status_code == status, answer.text
    problem = answer.json()
    assert answer.headers["content-type"] == "application/problem+json"
    assert problem["status"] == status
    assert problem["error"] == problem["detail"]
    assert problem.get("pointer", "") == pointer


def test_unknown_output_and_unknown_model(serve: Any, iris_served: np.ndarray) -> None:
    body = {"instances": iris_served[:1].tolist()}
    with serve(["iris"]) as client:
        unknown_output = client.post("/v1/models/iris:predict?output=scores", json=body)
        unknown_model = client.post("/v1/models/nope:predict", json=body)
    assert unknown_output.status_code == 422
    assert "label, probabilities" in unknown_output.json()["error"]
    assert unknown_model.status_code == 404
    assert unknown_model.json()["code"] == "model_not_found"


def test_body_over_the_limit_is_413(
    serve: Any, make_settings: Any, iris_served: np.ndarray
) -> None:
    small = make_settings(max_body_bytes=1000)
    rows = np.tile(iris_served[:1], (200, 1)).tolist()
    with serve(["iris"], settings=small) as client:
        answer = client.post("/v1/models/iris:predict", json={"instances": rows})
        fits = client.post("/v1/models/iris:predict", json={"instances": rows[:2]})
    assert answer.status_code == 413
    assert answer.json()["code"] == "payload_too_large"
    assert "error" in answer.json()
    assert fits.status_code == 200


def test_metrics_count_requests_by_model_version_protocol_status(
    serve: Any, iris_served: np.ndarray
) -> None:
    with serve(["iris"]) as client:
        client.post("/v1/models/iris:predict", json={"instances": iris_served[:2].tolist()})
        client.post("/v1/models/iris:predict", json={"instances": [[1]]})
        text = client.get("/metrics").text
    assert (
        'modelport_requests_total{deployment="",model="iris",protocol="v1",'
        'slot="",status="200",version="1"} 1.0' in text
    )
    assert (
        'modelport_request_errors_total{deployment="",model="iris",protocol="v1",slot="",status="422",'
        'version="1"} 1.0' in text
    )
    assert 'modelport_predicted_rows_total{model="iris",version="1"} 2.0' in text
    assert "modelport_request_duration_seconds_bucket" in text
