"""MLflow scoring protocol against the real app: every body format, health, and every error."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import modelport
from modelport.config import Settings

JSON = {"content-type": "application/json"}


@pytest.fixture
def iris_rows(iris_served: np.ndarray) -> np.ndarray:
    return iris_served[::6]


@pytest.fixture
def mixed_rows(mixed_served: pd.DataFrame) -> pd.DataFrame:
    return mixed_served.head(15)


def mlflow_error(answer: httpx.Response, status: int, error_code: str, message: str) -> None:
    """The status, and the two keys MLflow clients read."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error_code"] == error_code, body
    assert message in body["message"], body


def predictions(answer: httpx.Response) -> list[Any]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    result: list[Any] = answer.json()["predictions"]
    return result


# -- predictions ------------------------------------------------------------------------


def test_tensor_model_in_every_format(
    serve: Any, iris_rows: np.ndarray, iris_logreg: LogisticRegression
) -> None:
    rows = iris_rows
    frame = pd.DataFrame(rows, columns=["sepal_l", "sepal_w", "petal_l", "petal_w"])
    bodies = [
        {"dataframe_split": {"data": rows.tolist()}},
        {"dataframe_split": frame.to_dict(orient="split")},
        {"dataframe_split": pd.DataFrame(rows).to_dict(orient="split")},
        {"dataframe_records": frame.to_dict(orient="records")},
        {"instances": rows.tolist()},
        {"inputs": rows.tolist()},
        {"inputs": {"input": rows.tolist()}},
    ]
    expected = iris_logreg.predict(rows).tolist()
    with serve(["iris"]) as client:
        for body in bodies:
            assert predictions(client.post("/invocations", json=body)) == expected, body
        for content_type in ("text/csv", "application/csv; charset=utf-8"):
            csv = client.post(
                "/invocations",
                content=frame.to_csv(index=False),
                headers={"content-type": content_type},
            )
            assert predictions(csv) == expected, content_type


def test_columns_model_in_every_format(
    serve: Any, mixed_rows: pd.DataFrame, mixed_pipeline: Pipeline
) -> None:
    frame = mixed_rows
    reordered = frame[["member", "income", "city", "age"]]
    bodies = [
        {"dataframe_split": frame.to_dict(orient="split")},
        {"dataframe_split": reordered.to_dict(orient="split")},
        {"dataframe_split": {"data": frame.to_numpy().tolist()}},
        {"dataframe_records": reordered.to_dict(orient="records")},
        {"instances": frame.to_dict(orient="records")},
        {"instances": frame.to_numpy().tolist()},
        {"inputs": {name: frame[name].tolist() for name in frame.columns}},
        {"inputs": frame.to_numpy().tolist()},
    ]
    expected = mixed_pipeline.predict(frame).tolist()
    with serve(["mixed"]) as client:
        for body in bodies:
            assert predictions(client.post("/invocations", json=body)) == expected, body
        csv = client.post(
            "/invocations",
            content=reordered.to_csv(index=False),
            headers={"content-type": "text/csv"},
        )
        assert predictions(csv) == expected


def test_output_selection(
    serve: Any,
    iris_rows: np.ndarray,
    iris_logreg: LogisticRegression,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rows = iris_rows.tolist()
    expected = iris_logreg.predict_proba(iris_rows)
    with serve(["iris"]) as client:
        by_param = client.post(
            "/invocations", json={"inputs": rows, "params": {"output": "probabilities"}}
        )
        by_query = client.post("/invocations?output=probabilities", json={"inputs": rows})
        both = client.post(
            "/invocations?output=label", json={"inputs": rows, "params": {"output": "label"}}
        )
        with caplog.at_level(logging.WARNING, logger="modelport.serving"):
            extra = client.post(
                "/invocations", json={"inputs": rows, "params": {"temperature": 0.2}}
            )
    np.testing.assert_allclose(predictions(by_param), expected, rtol=1e-12)
    np.testing.assert_allclose(predictions(by_query), expected, rtol=1e-12)
    assert predictions(both) == predictions(extra) == iris_logreg.predict(iris_rows).tolist()
    assert "ignoring params temperature" in caplog.text


def test_mlflow_client_payloads_and_response_parser(
    serve: Any,
    mixed_rows: pd.DataFrame,
    mixed_pipeline: Pipeline,
    iris_rows: np.ndarray,
    iris_logreg: LogisticRegression,
) -> None:
    """The payloads MLflow's own scoring client builds, read back with its own parser."""
    proto_json_utils = pytest.importorskip("mlflow.utils.proto_json_utils")
    deployments = pytest.importorskip("mlflow.deployments")
    frame_body = proto_json_utils.dump_input_data(mixed_rows, params={"output": "probabilities"})
    array_body = proto_json_utils.dump_input_data(iris_rows)
    with serve(["mixed", "iris"]) as client:
        by_frame = client.post("/models/mixed/invocations", content=frame_body, headers=JSON)
        by_array = client.post("/models/iris/invocations", content=array_body, headers=JSON)
    assert by_frame.status_code == by_array.status_code == 200, (by_frame.text, by_array.text)
    parsed = deployments.PredictionsResponse.from_json(by_frame.text).get_predictions()
    np.testing.assert_allclose(
        parsed.to_numpy(), mixed_pipeline.predict_proba(mixed_rows), rtol=1e-12
    )
    labels = deployments.PredictionsResponse.from_json(by_array.text).get_predictions()
    assert labels.iloc[:, 0].tolist() == iris_logreg.predict(iris_rows).tolist()


# -- health, version, default model --------------------------------------------------------


def test_ping_health_and_version(serve: Any, iris_rows: np.ndarray) -> None:
    with serve(["iris"]) as client:
        for path in ("/ping", "/health"):
            answer = client.get(path)
            assert (answer.status_code, answer.text) == (200, "\n")
            assert answer.headers["content-type"] == "application/json"
        version = client.get("/version")
    assert (version.status_code, version.text) == (200, modelport.__version__)


def test_the_document_describes_the_probes_as_they_answer(
    serve: Any, iris_rows: np.ndarray
) -> None:
    """Found by the fuzzer: /ping and /health were documented as JSON, yet answer a newline."""
    with serve(["iris"]) as client:
        paths = client.get("/openapi.json").json()["paths"]
    for path in ("/ping", "/health"):
        assert "content" not in paths[path]["get"]["responses"]["200"], path
    assert list(paths["/version"]["get"]["responses"]["200"]["content"]) == ["text/plain"]


def test_default_model_among_several(
    serve: Any,
    make_settings: Callable[..., Settings],
    iris_rows: np.ndarray,
    mixed_rows: pd.DataFrame,
    mixed_pipeline: Pipeline,
    iris_logreg: LogisticRegression,
) -> None:
    records = {"dataframe_records": mixed_rows.to_dict(orient="records")}
    instances = {"instances": iris_rows.tolist()}
    with serve(["iris", "mixed"], settings=make_settings(default_model="mixed")) as client:
        assert client.get("/ping").status_code == 200
        chosen = client.post("/invocations", json=records)
        named = client.post("/models/iris/invocations", json=instances)
    assert predictions(chosen) == mixed_pipeline.predict(mixed_rows).tolist()
    assert predictions(named) == iris_logreg.predict(iris_rows).tolist()
    with serve(["iris", "mixed"]) as client:
        mlflow_error(
            client.post("/invocations", json=instances),
            404,
            "RESOURCE_DOES_NOT_EXIST",
            "--default-model",
        )
        mlflow_error(client.get("/ping"), 404, "RESOURCE_DOES_NOT_EXIST", "--default-model")
        assert predictions(client.post("/models/iris/invocations", json=instances))


def test_model_that_never_loaded(serve: Any) -> None:
    with serve(["ghost"], wait_ready=False) as client:
        mlflow_error(client.get("/health"), 404, "RESOURCE_DOES_NOT_EXIST", "'ghost' is not loaded")
        mlflow_error(
            client.post("/invocations", json={"inputs": [[1.0]]}),
            503,
            "TEMPORARILY_UNAVAILABLE",
            "'ghost' is not loaded",
        )
        mlflow_error(
            client.post("/models/nope/invocations", json={"inputs": [[1.0]]}),
            404,
            "RESOURCE_DOES_NOT_EXIST",
            "model 'nope' is not served here",
        )


def test_requests_are_counted_per_model(serve: Any, iris_rows: np.ndarray) -> None:
    with serve(["iris"]) as client:
        client.post("/invocations", json={"inputs": iris_rows.tolist()})
        exposition = client.get("/metrics").text
    assert (
        'modelport_requests_total{deployment="",model="iris",protocol="mlflow",'
        'slot="",status="200",version="1"}' in exposition
    )


# -- errors -------------------------------------------------------------------------------


def test_unsupported_media_types(serve: Any, iris_rows: np.ndarray) -> None:
    body = b'{"inputs": [[5.1, 3.5, 1.4, 0.2]]}'
    cases = {
        None: "send a Content-Type header",
        "text/plain": "unsupported Content-Type 'text/plain'",
        "application/x-www-form-urlencoded": "unsupported Content-Type",
        "application/json; charset=latin-1": "unsupported charset",
        "application/json; format=pandas-split": "only charset=utf-8 is allowed",
    }
    with serve(["iris"]) as client:
        for content_type, message in cases.items():
            headers = {"content-type": content_type} if content_type else {}
            answer = client.post("/invocations", content=body, headers=headers)
            mlflow_error(answer, 415, "BAD_REQUEST", message)
        assert predictions(client.post("/invocations", content=body, headers=JSON))


def test_malformed_bodies(serve: Any, iris_rows: np.ndarray) -> None:
    csv = {"content-type": "text/csv"}
    cases: list[tuple[bytes, dict[str, str], str]] = [
        (b"", JSON, "the request body is empty"),
        (b'{"inputs": [[1, 2, 3, 4]', JSON, "not valid JSON"),
        (b'{"inputs": [[NaN, 2, 3, 4]]}', JSON, "not valid JSON"),
        (b"[[1, 2, 3, 4]]", JSON, "must be a JSON object"),
        (b'{"data": [[1, 2, 3, 4]]}', JSON, "exactly one of dataframe_split"),
        (
            b'{"instances": [[1, 2, 3, 4]], "inputs": [[1, 2, 3, 4]]}',
            JSON,
            "got keys: instances, inputs",
        ),
        (b'{"dataframe_split": [[1, 2, 3, 4]]}', JSON, "dataframe_split must be an object"),
        (
            b'{"dataframe_split": {"data": [[1, 2, 3, 4]], "dtype": "f"}}',
            JSON,
            "only columns, data and index",
        ),
        (b'{"dataframe_records": {"a": [1]}}', JSON, "must be a non-empty list"),
        (b'{"instances": [[1, 2, 3, 4], [1, 2]]}', JSON, "not a rectangular array"),
        (b'{"inputs": [[1, 2, 3, 4]], "params": {"output": 1}}', JSON, "params.output"),
        (b"a,b\n1,2\n1,2,3,4\n", csv, "Failed to parse input as a Pandas DataFrame"),
        (b"", csv, "Failed to parse input as a Pandas DataFrame"),
    ]
    with serve(["iris"]) as client:
        for body, headers, message in cases:
            answer = client.post("/invocations", content=body, headers=headers)
            mlflow_error(answer, 400, "BAD_REQUEST", message)
        disagree = client.post(
            "/invocations?output=label",
            json={"inputs": [[1, 2, 3, 4]], "params": {"output": "probabilities"}},
        )
        mlflow_error(disagree, 400, "BAD_REQUEST", "disagree")


def test_tensor_inputs_that_fail_the_signature(serve: Any, iris_rows: np.ndarray) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"inputs": [[1.0, 2.0, 3.0]]}, "expects 4 values on axis 1", "/inputs/0"),
        (
            {"dataframe_split": {"data": [[1, 2, 3, 4], [1, 2, "x", 4]]}},
            "got strings",
            "/dataframe_split/data/1",
        ),
        (
            {"instances": [[1, 2, 3, 4], [1, 2, 3, 4], [1, None, 3, 4]]},
            "null values",
            "/instances/2",
        ),
        ({"inputs": [[1, 2, 3, 4], [1, 2, True, 4]]}, "booleans", "/inputs/1"),
        (
            {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2, 3, 4]]}},
            "takes 4 features per row",
            "/dataframe_split/columns",
        ),
        ({"instances": [{"petal": 1.0}]}, "unknown input 'petal'", "/instances"),
        (
            {"inputs": [[1, 2, 3, 4]], "params": {"output": "logits"}},
            "unknown output 'logits'",
            "/output",
        ),
    ]
    csv = "a,b,c,d\n1,2,3,4\n1,2,3,4\n1,2,x,4\n"
    with serve(["iris"]) as client:
        assert_signature_failures(client, cases, csv)


def assert_signature_failures(
    client: Any, cases: list[tuple[dict[str, Any], str, str]], csv: str
) -> None:
    """Each JSON case is a 422 with its message and pointer; the CSV fails at its row 2."""
    for body, message, pointer in cases:
        answer = client.post("/invocations", json=body)
        mlflow_error(answer, 422, "INVALID_PARAMETER_VALUE", message)
        assert answer.json()["pointer"] == pointer, (body, answer.json())
    bad_csv = client.post("/invocations", content=csv, headers={"content-type": "text/csv"})
    mlflow_error(bad_csv, 422, "INVALID_PARAMETER_VALUE", "got strings or booleans (row 2)")


def test_columns_inputs_that_fail_the_signature(serve: Any, mixed_rows: pd.DataFrame) -> None:
    records = mixed_rows.head(5).to_dict(orient="records")
    records[3]["age"] = "old"
    split = mixed_rows.head(5).to_dict(orient="split")
    split["data"][2][0] = 1.5  # a fraction in the int64 age column
    cases: list[tuple[dict[str, Any], str, str]] = [
        (
            {"dataframe_records": records},
            "input 'age' expects int64 values, got strings or booleans (row 3)",
            "/dataframe_records/3/age",
        ),
        (
            {"dataframe_split": split},
            "expects integers, got fractions (row 2)",
            "/dataframe_split/data/2/0",
        ),
        (
            {"inputs": {"age": [30], "income": [1.0], "city": ["nice"]}},
            "missing input 'member'",
            "/member",
        ),
        ({"inputs": [[30, 1.0, "nice"]]}, "each row must have 4 values", "/inputs/0"),
        (
            {"inputs": {"age": [30], "income": [1.0], "city": [7], "member": ["yes"]}},
            "expects strings, got numbers (row 0)",
            "/inputs/city/0",
        ),
    ]
    csv = mixed_rows.head(5).assign(age=["31", "40", "x", "50", "60"]).to_csv(index=False)
    with serve(["mixed"]) as client:
        assert_signature_failures(client, cases, csv)


def test_oversized_body(
    serve: Any, make_settings: Callable[..., Settings], iris_rows: np.ndarray
) -> None:
    body = {"inputs": np.ones((200, 4)).tolist()}
    with serve(["iris"], settings=make_settings(max_body_bytes=1000)) as client:
        mlflow_error(
            client.post("/invocations", json=body),
            413,
            "BAD_REQUEST",
            "exceeds the limit of 1000 bytes",
        )
