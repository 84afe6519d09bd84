"""Open Inference Protocol V2 against the real app: metadata, inference, binary, every error."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from starlette.testclient import TestClient
from tritonclient.http import InferResult

import modelport
from modelport.config import Settings
from modelport.registry import Registry


def infer(
    client: TestClient, payload: dict[str, Any], path: str = "/v2/models/iris/infer", **headers: str
) -> Any:
    """POST the way tritonclient does: raw bytes, no Content-Type."""
    return client.post(path, content=orjson.dumps(payload), headers=headers)


def iris_input(rows: np.ndarray, name: str = "INPUT0", datatype: str = "FP64") -> dict[str, Any]:
    return {
        "name": name,
        "shape": list(rows.shape),
        "datatype": datatype,
        "data": rows.ravel().tolist(),
    }


def column_inputs(frame: pd.DataFrame) -> list[dict[str, Any]]:
    types = {"age": "INT64", "income": "FP64", "city": "BYTES", "member": "BYTES"}
    return [
        {"name": c, "shape": [len(frame)], "datatype": types[c], "data": frame[c].tolist()}
        for c in frame.columns
    ]


def outputs_of(answer: Any) -> dict[str, np.ndarray]:
    assert answer.status_code == 200, answer.text
    return {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in answer.json()["outputs"]}


# -- server and model metadata -------------------------------------------------------------


def test_server_metadata_and_health(serve: Any, iris_served: np.ndarray) -> None:
    with serve(["iris"]) as client:
        meta = client.get("/v2").json()
        assert client.get("/v2/health/live").json() == {"live": True}
        assert client.get("/v2/health/ready").json() == {"ready": True}
    assert meta == {
        "name": "modelport",
        "version": modelport.__version__,
        "extensions": ["binary_tensor_data"],
    }


def test_model_metadata_comes_from_the_signature(
    serve: Any, iris_served: np.ndarray, mixed_served: pd.DataFrame
) -> None:
    with serve(["iris", "mixed"]) as client:
        iris = client.get("/v2/models/iris").json()
        versioned = client.get("/v2/models/iris/versions/1").json()
        mixed = client.get("/v2/models/mixed").json()
    assert (
        iris
        == versioned
        == {
            "name": "iris",
            "versions": ["1"],
            "platform": "sklearn_skops",
            "inputs": [{"name": "input", "datatype": "FP64", "shape": [-1, 4]}],
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP64", "shape": [-1, 3]},
            ],
        }
    )
    assert mixed["inputs"] == [
        {"name": "age", "datatype": "INT64", "shape": [-1]},
        {"name": "income", "datatype": "FP64", "shape": [-1]},
        {"name": "city", "datatype": "BYTES", "shape": [-1]},
        {"name": "member", "datatype": "BYTES", "shape": [-1]},
    ]


def test_model_ready_with_and_without_version(serve: Any, iris_served: np.ndarray) -> None:
    with serve(["iris"]) as client:
        assert client.get("/v2/models/iris/ready").json() == {"name": "iris", "ready": True}
        assert client.get("/v2/models/iris/versions/1/ready").status_code == 200
        for path in (
            "/v2/models/nope/ready",
            "/v2/models/iris/versions/2/ready",
            "/v2/models/iris/versions/latest/ready",
            "/v2/models/iris/versions/%C2%B2",
            "/v2/models/nope",
            "/v2/models/iris/versions/2",
            "/v2/models/iris/versions/2/infer",
        ):
            answer = client.request("POST" if path.endswith("infer") else "GET", path)
            assert answer.status_code == 404, path
            assert answer.json()["error"], path


def test_not_loaded_yet_is_503_with_retry_after(serve: Any) -> None:
    with serve(["ghost"], wait_ready=False) as client:
        server = client.get("/v2/health/ready")
        model = client.get("/v2/models/ghost/ready")
        live = client.get("/v2/health/live")
    assert live.status_code == 200
    for answer in (server, model):
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "1"
        assert "error" in answer.json()


def test_alias_in_the_url_encoded_name(
    serve: Any, iris_served: np.ndarray, registry: Registry, iris_logreg: LogisticRegression
) -> None:
    registry.set_alias("iris", "production", 1)
    rows = iris_served[:3]
    with serve(["iris@production"]) as client:
        meta = client.get("/v2/models/iris%40production")
        ready = client.get("/v2/models/iris%40production/versions/1/ready")
        answer = infer(client, {"inputs": [iris_input(rows)]}, "/v2/models/iris%40production/infer")
    assert meta.json()["name"] == "iris"
    assert ready.status_code == 200
    assert answer.json()["model_version"] == "1"
    assert outputs_of(answer)["label"].tolist() == iris_logreg.predict(rows).tolist()


# -- inference -----------------------------------------------------------------------------


def test_tensor_model_matches_in_process_predictions(
    serve: Any, iris_served: np.ndarray, iris_logreg: LogisticRegression
) -> None:
    rows = iris_served[::7]
    with serve(["iris"]) as client:
        answer = infer(client, {"id": "r-1", "inputs": [iris_input(rows)]})
        nested = infer(
            client,
            {"inputs": [{**iris_input(rows, "input"), "data": rows.tolist()}]},
            "/v2/models/iris/versions/1/infer",
        )
    body = answer.json()
    assert (body["model_name"], body["model_version"], body["id"]) == ("iris", "1", "r-1")
    outputs = outputs_of(answer)
    assert outputs["label"].tolist() == iris_logreg.predict(rows).tolist()
    np.testing.assert_allclose(
        outputs["probabilities"], iris_logreg.predict_proba(rows), rtol=1e-12
    )
    assert body["outputs"][1]["shape"] == [len(rows), 3]
    assert "id" not in nested.json()
    assert orjson.loads(nested.content)["outputs"] == body["outputs"]


def test_fp32_and_integer_tensors_are_coerced(
    serve: Any, iris_served: np.ndarray, iris_logreg: LogisticRegression
) -> None:
    rows = np.array([[5, 3, 1, 0], [7, 3, 6, 2]])
    with serve(["iris"]) as client:
        ints = outputs_of(infer(client, {"inputs": [iris_input(rows, datatype="INT64")]}))
        fp32 = outputs_of(infer(client, {"inputs": [iris_input(rows, datatype="FP32")]}))
    assert ints["label"].tolist() == fp32["label"].tolist() == iris_logreg.predict(rows).tolist()


def test_columns_model_takes_one_input_per_column(
    serve: Any, mixed_served: pd.DataFrame, mixed_pipeline: Pipeline
) -> None:
    frame = mixed_served.head(15)
    inputs = column_inputs(frame)
    inputs[1] = {**inputs[1], "shape": [len(frame), 1]}
    with serve(["mixed"]) as client:
        answer = infer(client, {"inputs": inputs[::-1]}, "/v2/models/mixed/infer")
    outputs = outputs_of(answer)
    assert outputs["label"].tolist() == mixed_pipeline.predict(frame).tolist()
    np.testing.assert_allclose(
        outputs["probabilities"], mixed_pipeline.predict_proba(frame), rtol=1e-12
    )


def test_numeric_columns_model_accepts_one_positional_tensor(
    serve: Any, settings: Settings, iris_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = iris_data
    frame = pd.DataFrame(X, columns=["sl", "sw", "pl", "pw"])
    model = LogisticRegression(max_iter=500).fit(frame, y)
    modelport.log_model(model, "flowers", frame.head(10), settings=settings)
    with serve(["flowers"]) as client:
        answer = infer(
            client, {"inputs": [iris_input(X[:9], "input-0")]}, "/v2/models/flowers/infer"
        )
    assert outputs_of(answer)["label"].tolist() == model.predict(frame.head(9)).tolist()


def test_string_labels_come_back_as_bytes_in_json_and_binary(
    serve: Any, settings: Settings, iris_data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = iris_data
    model = LogisticRegression(max_iter=500).fit(
        X, np.array(["setosa", "versicolor", "virginica"])[y]
    )
    modelport.log_model(model, "named", X[:10], settings=settings)
    rows = X[::30]
    payload = {"inputs": [iris_input(rows)], "outputs": [{"name": "label"}]}
    with serve(["named"]) as client:
        text = infer(client, payload, "/v2/models/named/infer")
        binary = infer(
            client,
            {**payload, "parameters": {"binary_data_output": True}},
            "/v2/models/named/infer",
        )
    assert text.json()["outputs"][0]["datatype"] == "BYTES"
    assert outputs_of(text)["label"].tolist() == model.predict(rows).tolist()
    result = InferResult.from_response_body(
        binary.content, header_length=int(binary.headers["inference-header-content-length"])
    )
    assert result.as_numpy("label").tolist() == [s.encode() for s in model.predict(rows)]


def test_requested_outputs_are_returned_exactly_in_order(
    serve: Any, iris_served: np.ndarray
) -> None:
    payload = {
        "inputs": [iris_input(iris_served[:2])],
        "outputs": [{"name": "probabilities"}, {"name": "label"}],
    }
    with serve(["iris"]) as client:
        both = infer(client, payload)
        one = infer(client, {**payload, "outputs": [{"name": "label"}]})
    assert [o["name"] for o in both.json()["outputs"]] == ["probabilities", "label"]
    assert [o["name"] for o in one.json()["outputs"]] == ["label"]


def test_thousand_rows(
    serve: Any, iris_served: np.ndarray, iris_logreg: LogisticRegression
) -> None:
    rows = np.tile(iris_served, (7, 1))[:1000]
    with serve(["iris"]) as client:
        outputs = outputs_of(infer(client, {"inputs": [iris_input(rows)]}))
    assert outputs["label"].shape == (1000,)
    assert outputs["label"].tolist() == iris_logreg.predict(rows).tolist()


def test_metrics_count_v2_requests_under_the_served_model(
    serve: Any, iris_served: np.ndarray
) -> None:
    with serve(["iris"]) as client:
        infer(client, {"inputs": [iris_input(iris_served[:1])]})
        exposition = client.get("/metrics").text
    assert (
        'modelport_requests_total{deployment="",model="iris",protocol="v2",'
        'slot="",status="200",version="1"}' in exposition
    )


# -- binary tensor data extension ----------------------------------------------------------


def test_binary_inputs_and_outputs(
    serve: Any, iris_served: np.ndarray, iris_logreg: LogisticRegression
) -> None:
    rows = iris_served[:6].astype("<f4")
    header = orjson.dumps(
        {
            "id": "b",
            "parameters": {"binary_data_output": True},
            "inputs": [
                {
                    "name": "INPUT0",
                    "shape": [6, 4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": rows.nbytes},
                }
            ],
            "outputs": [
                {"name": "label"},
                {"name": "probabilities", "parameters": {"binary_data": False}},
            ],
        }
    )
    with serve(["iris"]) as client:
        answer = client.post(
            "/v2/models/iris/infer",
            content=header + rows.tobytes(),
            headers={"Inference-Header-Content-Length": str(len(header))},
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/octet-stream"
    length = int(answer.headers["inference-header-content-length"])
    result = InferResult.from_response_body(answer.content, header_length=length)
    assert result.get_output("label")["parameters"] == {"binary_data_size": 48}
    assert "data" in result.get_output("probabilities")
    assert result.as_numpy("label").tolist() == iris_logreg.predict(rows).tolist()
    assert result.get_response()["id"] == "b"


def test_binary_bytes_columns(
    serve: Any, mixed_served: pd.DataFrame, mixed_pipeline: Pipeline
) -> None:
    frame = mixed_served.head(5)
    inputs, chunks = column_inputs(frame), []
    for tensor in inputs[2:]:
        encoded = [s.encode() for s in tensor.pop("data")]
        chunks.append(b"".join(len(e).to_bytes(4, "little") + e for e in encoded))
        tensor["parameters"] = {"binary_data_size": len(chunks[-1])}
    header = orjson.dumps({"inputs": inputs})
    with serve(["mixed"]) as client:
        answer = client.post(
            "/v2/models/mixed/infer",
            content=header + b"".join(chunks),
            headers={"Inference-Header-Content-Length": str(len(header))},
        )
    assert answer.headers["content-type"] == "application/json"
    assert outputs_of(answer)["label"].tolist() == mixed_pipeline.predict(frame).tolist()


# -- errors: 4xx with the protocol's "error" key -------------------------------------------


def _iris(**changes: Any) -> dict[str, Any]:
    return {"inputs": [{**iris_input(np.ones((2, 4))), **changes}]}


_ERRORS: list[tuple[str, Any, int, str]] = [
    ("not JSON", b"{", 400, ""),
    (
        "NaN token",
        b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[NaN,1,2,3]}]}',
        400,
        "",
    ),
    ("empty body", b"", 400, ""),
    ("no inputs", {"inputs": []}, 400, "/inputs"),
    ("numeric id", {**_iris(), "id": 1}, 400, "/id"),
    ("batch dim -1", _iris(shape=[-1, 4]), 400, "/inputs/0/shape"),
    ("lowercase datatype", _iris(datatype="fp64"), 400, "/inputs/0/datatype"),
    ("count mismatch", _iris(data=[1, 2, 3]), 400, "/inputs/0/data"),
    ("strings in FP64", _iris(data=["1"] * 8), 400, "/inputs/0/data"),
    ("BYTES into a float input", _iris(datatype="BYTES", data=["1"] * 8), 422, "/inputs/0/data"),
    ("BOOL into a float input", _iris(datatype="BOOL", data=[True] * 8), 422, "/inputs/0/data"),
    ("three features", _iris(shape=[2, 3], data=[1] * 6), 422, "/inputs/0/data"),
    ("one-dimensional row", _iris(shape=[4], data=[1] * 4), 422, "/inputs/0/shape"),
    ("empty batch", _iris(shape=[0, 4], data=[]), 422, "/inputs/0/data"),
    ("two inputs", {"inputs": _iris()["inputs"] * 2}, 422, "/inputs"),
    ("unknown output", {**_iris(), "outputs": [{"name": "score"}]}, 400, "/outputs/0/name"),
    (
        "dimension past int64",
        _iris(shape=[9223372036854775808, 0], data=[]),
        400,
        "/inputs/0/shape",
    ),
    ("65 dimensions", _iris(shape=[1] * 65, data=[1]), 400, "/inputs/0/shape"),
]


@pytest.mark.parametrize(
    ("payload", "status", "pointer"), [e[1:] for e in _ERRORS], ids=[e[0] for e in _ERRORS]
)
def test_client_mistakes_get_4xx_with_error(
    serve: Any, iris_served: np.ndarray, payload: Any, status: int, pointer: str
) -> None:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    with serve(["iris"]) as client:
        answer = client.post("/v2/models/iris/infer", content=raw)
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error"] == body["detail"]
    assert body.get("pointer", "") == pointer


def test_column_mistakes_name_the_column(serve: Any, mixed_served: pd.DataFrame) -> None:
    inputs = column_inputs(mixed_served.head(3))
    with serve(["mixed"]) as client:
        missing = infer(client, {"inputs": inputs[:3]}, "/v2/models/mixed/infer")
        unknown = infer(
            client, {"inputs": [*inputs, {**inputs[0], "name": "zip"}]}, "/v2/models/mixed/infer"
        )
        numbers_as_city = infer(
            client,
            {
                "inputs": [
                    *inputs[:2],
                    {**inputs[2], "data": [1, 2, 3], "datatype": "INT64"},
                    inputs[3],
                ]
            },
            "/v2/models/mixed/infer",
        )
        twice = infer(client, {"inputs": [*inputs, inputs[0]]}, "/v2/models/mixed/infer")
    assert missing.status_code == 422
    assert "member" in missing.json()["error"]
    assert unknown.status_code == 422
    assert unknown.json()["pointer"] == "/inputs/4/data"
    assert numbers_as_city.status_code == 422
    assert numbers_as_city.json()["pointer"] == "/inputs/2/data"
    assert twice.status_code == 400
    assert twice.json()["pointer"] == "/inputs/4/name"


def test_wrong_method_and_binary_header_mistakes(serve: Any, iris_served: np.ndarray) -> None:
    with serve(["iris"]) as client:
        wrong_method = client.get("/v2/models/iris/infer")
        bad_length = infer(client, _iris(), **{"Inference-Header-Content-Length": "x"})
    assert wrong_method.status_code == 405
    assert "error" in wrong_method.json()
    assert bad_length.status_code == 400
    assert "Inference-Header-Content-Length" in bad_length.json()["error"]
