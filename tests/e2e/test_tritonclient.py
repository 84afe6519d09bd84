"""The real V2 client, tritonclient[http], against `modelport serve` over loopback."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from tritonclient.utils import InferenceServerException

import modelport
from modelport.config import Settings
from modelport.registry import Registry
from tests.e2e.conftest import LiveServer, start_server


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
    mixed_pipeline: Pipeline,
    mixed_frame: tuple[pd.DataFrame, np.ndarray],
) -> Iterator[LiveServer]:
    """One server for the module (start-up is the slow part): iris@production and mixed."""
    folder = tmp_path_factory.mktemp("tritonclient")
    settings = Settings(home=folder / "home")
    modelport.log_model(iris_logreg, "iris", iris_data[0][:20], settings=settings)
    modelport.log_model(mixed_pipeline, "mixed", mixed_frame[0].head(20), settings=settings)
    registry = Registry.from_settings(settings)
    registry.set_alias("iris", "production", 1)
    registry.close()
    live = start_server(["iris@production", "mixed"], settings, folder)
    yield live
    live.process.kill()
    live.process.wait()


@pytest.fixture
def client(server: LiveServer) -> Iterator[triton.InferenceServerClient]:
    connection = triton.InferenceServerClient(server.host_port)
    yield connection
    connection.close()


def iris_input(rows: np.ndarray, *, binary: bool) -> triton.InferInput:
    tensor = triton.InferInput("INPUT0", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows.astype(np.float32), binary_data=binary)
    return tensor


def test_health_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("iris")
    assert client.is_model_ready("iris@production", "1")
    assert not client.is_model_ready("iris", "2")
    assert not client.is_model_ready("nope")
    server = client.get_server_metadata()
    assert server["name"] == "modelport"
    assert server["extensions"] == ["binary_tensor_data"]
    model = client.get_model_metadata("iris@production", "1")
    assert model["versions"] == ["1"]
    assert model["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 4]}]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_matches_the_model(
    client: triton.InferenceServerClient,
    binary: bool,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    rows = iris_data[0][::10]
    result = client.infer("iris@production", [iris_input(rows, binary=binary)], request_id="req-1")
    expected = iris_logreg.predict_proba(rows.astype(np.float32))
    assert result.get_response()["id"] == "req-1"
    assert result.as_numpy("label").tolist() == np.argmax(expected, axis=1).tolist()
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, rtol=1e-9)
    assert "parameters" in result.get_output("label")  # no outputs named: all binary


def test_requested_outputs_binary_on_and_off(
    client: triton.InferenceServerClient, iris_data: tuple[np.ndarray, np.ndarray]
) -> None:
    outputs = [
        triton.InferRequestedOutput("probabilities", binary_data=False),
        triton.InferRequestedOutput("label", binary_data=True),
    ]
    result = client.infer("iris", [iris_input(iris_data[0][:3], binary=True)], outputs=outputs)
    response = result.get_response()
    assert [o["name"] for o in response["outputs"]] == ["probabilities", "label"]
    assert len(result.get_output("probabilities")["data"]) == 9
    assert result.get_output("label")["parameters"] == {"binary_data_size": 24}
    assert result.as_numpy("probabilities").shape == (3, 3)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_bytes_columns(
    client: triton.InferenceServerClient,
    binary: bool,
    mixed_pipeline: Pipeline,
    mixed_frame: tuple[pd.DataFrame, np.ndarray],
) -> None:
    frame = mixed_frame[0].head(8)
    inputs = []
    for column, datatype in (
        ("age", "INT64"),
        ("income", "FP64"),
        ("city", "BYTES"),
        ("member", "BYTES"),
    ):
        tensor = triton.InferInput(column, [len(frame)], datatype)
        values = frame[column].to_numpy()
        tensor.set_data_from_numpy(
            values.astype(object) if datatype == "BYTES" else values, binary_data=binary
        )
        inputs.append(tensor)
    result = client.infer("mixed", inputs, model_version="1")
    assert result.as_numpy("label").tolist() == mixed_pipeline.predict(frame).tolist()


def test_errors_surface_our_message(client: triton.InferenceServerClient) -> None:
    three_features = iris_input(np.ones((2, 3)), binary=True)
    with pytest.raises(InferenceServerException) as wrong_shape:
        client.infer("iris", [three_features])
    assert wrong_shape.value.status() == "422"
    assert "expects 4 values" in wrong_shape.value.message()
    with pytest.raises(InferenceServerException) as unknown:
        client.infer("nope", [iris_input(np.ones((1, 4)), binary=False)])
    assert unknown.value.status() == "404"
    assert "'nope' is not served here" in unknown.value.message()
    with pytest.raises(InferenceServerException) as unknown_output:
        client.infer(
            "iris",
            [iris_input(np.ones((1, 4)), binary=False)],
            outputs=[triton.InferRequestedOutput("score")],
        )
    assert unknown_output.value.status() == "400"
    assert "unknown output 'score'" in unknown_output.value.message()
