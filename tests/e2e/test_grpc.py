"""gRPC Open Inference Protocol V2: `modelport serve --grpc-port` and the real clients.

tritonclient.grpc as users call it (raw tensors), and its generated stub for what its
high-level client never sends (typed contents, request metadata). The server is a subprocess:
our generated messages and tritonclient's share protobuf names and cannot share a process.
"""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.grpc as triton
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc
from tritonclient.utils import InferenceServerException

import modelport
from modelport.config import AuthMode, Settings
from modelport.registry import Registry
from modelport.rollout.spec import parse_document
from modelport.rollout.store import DeploymentStore
from modelport.security.keys import KeyHasher, KeyStore, Scope
from modelport.security.secret import server_secret
from tests.e2e.conftest import LiveServer, free_port, start_server
from tests.e2e.doubles import SlowPoisonModel


@dataclass
class Served:
    http: LiveServer
    grpc_address: str


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
    mixed_pipeline: Pipeline,
    mixed_frame: tuple[pd.DataFrame, np.ndarray],
) -> Iterator[Served]:
    """One server for the module: iris@production, mixed columns, a model that crashes, and a
    deployment splitting traffic between two iris versions."""
    folder = tmp_path_factory.mktemp("grpc")
    settings = Settings(home=folder / "home", workers=1)
    for _ in range(2):
        modelport.log_model(iris_logreg, "iris", iris_data[0][:20], settings=settings)
    modelport.log_model(mixed_pipeline, "mixed", mixed_frame[0].head(20), settings=settings)
    modelport.log_model(SlowPoisonModel(), "poison", np.ones((2, 3)), settings=settings)
    registry = Registry.from_settings(settings)
    registry.set_alias("iris", "production", 1)
    slots = [
        {"model": "iris/1", "role": "primary", "weight": 50},
        {"model": "iris/2", "role": "canary", "weight": 50},
    ]
    flowers = {"strategy": "direct", "slots": slots}
    DeploymentStore(registry).apply(
        parse_document(
            {
                "apiVersion": "modelport/v1",
                "kind": "ModelDeployment",
                "metadata": {"name": "flowers"},
                "spec": flowers,
            }
        )
    )
    registry.close()
    port = free_port()
    live = start_server(
        ["iris@production", "mixed", "poison"],
        settings,
        folder,
        "--grpc-port",
        str(port),
        "--deployment",
        "flowers",
    )
    try:
        yield Served(live, f"127.0.0.1:{port}")
    finally:
        live.process.kill()
        live.process.wait()


@pytest.fixture
def client(served: Served) -> Iterator[triton.InferenceServerClient]:
    connection = triton.InferenceServerClient(served.grpc_address)
    yield connection
    connection.close()


@pytest.fixture
def stub(served: Served) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(served.grpc_address) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def iris_input(rows: np.ndarray, datatype: str = "FP64") -> triton.InferInput:
    tensor = triton.InferInput("input", list(rows.shape), datatype)
    tensor.set_data_from_numpy(rows.astype(triton.triton_to_np_dtype(datatype)))
    return tensor


def typed_request(
    model: str, rows: np.ndarray, datatype: str = "FP64", field: str = "fp64_contents"
) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=model, id="typed-1")
    tensor = request.inputs.add(name="input", datatype=datatype, shape=list(rows.shape))
    getattr(tensor.contents, field).extend(rows.ravel().tolist())
    return request


def test_a_deployment_answers_over_grpc_with_the_version_that_served(
    client: triton.InferenceServerClient, iris_data: tuple[np.ndarray, np.ndarray]
) -> None:
    rows = iris_data[0][:1]
    versions = {
        client.infer("flowers", [iris_input(rows)]).get_response().model_version for _ in range(40)
    }
    assert versions == {"1", "2"}  # 50/50: both take traffic (a miss has odds of 2^-39)
    assert client.is_model_ready("flowers")


def test_health(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("iris")
    assert client.is_model_ready("iris@production", "1")
    assert not client.is_model_ready("iris", "2")
    assert not client.is_model_ready("nope")


def test_server_and_model_metadata(client: triton.InferenceServerClient) -> None:
    server = client.get_server_metadata()
    assert (server.name, server.version) == ("modelport", modelport.__version__)
    model = client.get_model_metadata("iris@production", "1")
    assert (model.name, list(model.versions), model.platform) == ("iris", ["1"], "sklearn_skops")
    assert [(t.name, t.datatype, list(t.shape)) for t in model.inputs] == [
        ("input", "FP64", [-1, 4])
    ]
    assert [t.name for t in model.outputs] == ["label", "probabilities"]


def test_raw_tensors_give_the_model_s_predictions(
    client: triton.InferenceServerClient,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    rows = iris_data[0][::10]
    result = client.infer("iris@production", [iris_input(rows)], request_id="req-1")
    expected = iris_logreg.predict_proba(rows)
    assert result.get_response().id == "req-1"
    assert len(result.get_response().raw_output_contents) == 2
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, rtol=1e-12)
    assert result.as_numpy("label").tolist() == np.argmax(expected, axis=1).tolist()


def test_typed_contents_in_typed_contents_out(
    stub: pb_grpc.GRPCInferenceServiceStub,
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    rows = iris_data[0][:7]
    response, call = stub.ModelInfer.with_call(
        typed_request("iris", rows), metadata=(("x-request-id", "meta-7"),)
    )
    assert (response.model_name, response.model_version, response.id) == ("iris", "1", "typed-1")
    assert not response.raw_output_contents
    label, probabilities = response.outputs
    assert (label.datatype, list(label.shape)) == ("INT64", [7])
    assert (probabilities.datatype, list(probabilities.shape)) == ("FP64", [7, 3])
    expected = iris_logreg.predict_proba(rows)
    np.testing.assert_allclose(
        np.reshape(probabilities.contents.fp64_contents, (7, 3)), expected, rtol=1e-12
    )
    assert list(label.contents.int64_contents) == np.argmax(expected, axis=1).tolist()
    # the metadata id wins over the request's own id; it is echoed both ways
    assert ("x-request-id", "meta-7") in call.initial_metadata()
    assert ("x-request-id", "meta-7") in call.trailing_metadata()


def test_a_call_in_a_trace_gets_the_server_span(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    traceparent = f"00-{trace_id}-00f067aa0ba902b7-01"
    request = pb.ModelMetadataRequest(name="iris")
    _, call = stub.ModelMetadata.with_call(request, metadata=(("traceparent", traceparent),))
    metadata = dict(call.initial_metadata())
    assert metadata["x-request-id"] == trace_id
    version, trace, span, flags = metadata["traceresponse"].split("-")
    assert (version, trace, flags) == ("00", trace_id, "01")
    assert span != "00f067aa0ba902b7"


def test_requested_outputs(
    client: triton.InferenceServerClient, iris_data: tuple[np.ndarray, np.ndarray]
) -> None:
    result = client.infer(
        "iris",
        [iris_input(iris_data[0][:3], "FP32")],
        outputs=[triton.InferRequestedOutput("probabilities")],
    )
    assert [o.name for o in result.get_response().outputs] == ["probabilities"]
    assert result.as_numpy("probabilities").shape == (3, 3)
    assert result.as_numpy("label") is None


def test_bytes_columns(
    client: triton.InferenceServerClient,
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
        tensor.set_data_from_numpy(values.astype(object) if datatype == "BYTES" else values)
        inputs.append(tensor)
    result = client.infer("mixed", inputs, model_version="1")
    assert result.as_numpy("label").tolist() == mixed_pipeline.predict(frame).tolist()


def test_errors_carry_our_message_and_a_status_code(
    client: triton.InferenceServerClient, stub: pb_grpc.GRPCInferenceServiceStub
) -> None:
    with pytest.raises(InferenceServerException) as unknown:
        client.infer("nope", [iris_input(np.ones((1, 4)))])
    assert unknown.value.status() == "StatusCode.NOT_FOUND"
    assert "'nope' is not served here" in unknown.value.message()
    with pytest.raises(InferenceServerException) as wrong_shape:
        client.infer("iris", [iris_input(np.ones((2, 3)))])
    assert wrong_shape.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "expects 4 values" in wrong_shape.value.message()
    with pytest.raises(InferenceServerException) as not_served:
        client.get_inference_statistics()
    assert not_served.value.status() == "StatusCode.UNIMPLEMENTED"
    with pytest.raises(InferenceServerException) as unknown_output:
        client.infer(
            "iris", [iris_input(np.ones((1, 4)))], outputs=[triton.InferRequestedOutput("score")]
        )
    assert unknown_output.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "unknown output 'score'" in unknown_output.value.message()
    for request, message in [
        (typed_request("iris", np.ones((1, 4)), datatype="FP99"), "'FP99' is not one of"),
        (
            typed_request("iris", np.ones((1, 4)), field="fp32_contents"),
            "go in contents.fp64_contents",
        ),
        (typed_request("", np.ones((1, 4))), "model name is empty"),
    ]:
        with pytest.raises(grpc.RpcError) as error:
            stub.ModelInfer(request)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert message in error.value.details()


def test_a_crashing_model_is_internal_and_hides_why(
    served: Served, stub: pb_grpc.GRPCInferenceServiceStub
) -> None:
    request = typed_request("poison", np.array([[1.0, -1.0, 2.0]]))
    with pytest.raises(grpc.RpcError) as error:
        stub.ModelInfer(request, metadata=(("x-request-id", "crash-1"),))
    assert error.value.code() == grpc.StatusCode.INTERNAL
    assert "request id crash-1" in error.value.details()
    assert "poisoned" not in error.value.details()
    assert ("x-request-id", "crash-1") in error.value.trailing_metadata()
    assert re.search(r"crash-1.*poisoned row", served.http.log(), re.DOTALL)


def test_grpc_requests_are_counted_under_their_protocol(
    served: Served, client: triton.InferenceServerClient
) -> None:
    def counted() -> float:
        text = httpx.get(served.http.url + "/metrics").text
        match = re.search(
            r'^modelport_requests_total\{deployment="",model="iris",protocol="grpc",'
            r'slot="",status="200",version="1"\} (\S+)$',
            text,
            re.MULTILINE,
        )
        return float(match.group(1)) if match else 0.0

    before = counted()
    client.infer("iris", [iris_input(np.ones((1, 4)))])
    assert counted() == before + 1


def test_a_taken_grpc_port_stops_serve_with_the_reason(
    settings: Settings,
    cli: Callable[..., subprocess.CompletedProcess[str]],
    iris_logreg: LogisticRegression,
    iris_data: tuple[np.ndarray, np.ndarray],
) -> None:
    """Even when the holder allows sharing: grpc's default would share the port unnoticed."""
    modelport.log_model(iris_logreg, "iris", iris_data[0][:20], settings=settings)
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", "iris", "--port", str(free_port()), "--grpc-port", str(port))
    assert result.returncode != 0
    assert f"cannot listen for gRPC on 127.0.0.1:{port}" in result.stderr


def test_keys_guard_the_grpc_calls_as_they_guard_http(
    tmp_path: Path, iris_logreg: LogisticRegression, iris_data: tuple[np.ndarray, np.ndarray]
) -> None:
    settings = Settings(home=tmp_path / "home", workers=1, auth=AuthMode.REQUIRED)
    modelport.log_model(iris_logreg, "iris", iris_data[0][:20], settings=settings)
    registry = Registry.from_settings(settings)
    store = KeyStore(registry.database, KeyHasher(lambda: server_secret(settings)))
    predict = store.create(Scope.PREDICT).token
    read = store.create(Scope.READ).token
    registry.close()
    port = free_port()
    live = start_server(["iris"], settings, tmp_path, "--grpc-port", str(port))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            request = typed_request("iris", iris_data[0][:2])
            assert stub.ServerLive(pb.ServerLiveRequest()).live  # probes need no key

            def code_of(call: Callable[[], object]) -> grpc.StatusCode:
                with pytest.raises(grpc.RpcError) as caught:
                    call()
                return caught.value.code()

            assert code_of(lambda: stub.ModelInfer(request)) == grpc.StatusCode.UNAUTHENTICATED
            metadata_call = pb.ModelMetadataRequest(name="iris")
            assert code_of(lambda: stub.ModelMetadata(metadata_call)) == (
                grpc.StatusCode.UNAUTHENTICATED
            )
            as_reader = (("authorization", f"Bearer {read}"),)
            assert stub.ModelMetadata(metadata_call, metadata=as_reader).name == "iris"
            assert code_of(lambda: stub.ModelInfer(request, metadata=as_reader)) == (
                grpc.StatusCode.PERMISSION_DENIED
            )
            answer = stub.ModelInfer(request, metadata=(("x-api-key", predict),))
            assert answer.model_name == "iris"
            bad = (("authorization", "Bearer mpk_0123456789ab_" + "x" * 43),)
            assert code_of(lambda: stub.ModelInfer(request, metadata=bad)) == (
                grpc.StatusCode.UNAUTHENTICATED
            )
    finally:
        live.process.kill()
        live.process.wait()
