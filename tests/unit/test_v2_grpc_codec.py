"""V2 gRPC codec: typed and raw contents in, typed and raw contents out, every 400.

The requests are tritonclient's own protobuf messages: the codec reads any message of the V2
shape. (Ours, in modelport.serving.grpc, cannot be imported beside tritonclient's: both define
``inference.*`` in protobuf's default pool. The server tests run it in its own process.)
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest
from tritonclient.grpc import service_pb2 as pb

from modelport.codecs.v2_grpc import decode_infer, encode_outputs, payload_size
from modelport.errors import MalformedRequestError
from modelport.runtimes.signature import Signature, SignatureKind, TensorSpec

IRIS = Signature(
    SignatureKind.TENSOR,
    (TensorSpec("input", "float64", (-1, 4)),),
    (TensorSpec("label", "int64", (-1,)), TensorSpec("probabilities", "float64", (-1, 3))),
)


def columns(**dtypes: str) -> Signature:
    return Signature(
        SignatureKind.COLUMNS,
        tuple(TensorSpec(name, dtype, (-1,)) for name, dtype in dtypes.items()),
        (TensorSpec("prediction", "float64", (-1,)),),
    )


def typed(
    name: str, datatype: str, shape: list[int], field: str, values: list[Any]
) -> pb.ModelInferRequest.InferInputTensor:
    tensor = pb.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=shape)
    getattr(tensor.contents, field).extend(values)
    return tensor


def request(
    *inputs: pb.ModelInferRequest.InferInputTensor,
    raw: list[bytes] | None = None,
    outputs: list[str] | None = None,
    request_id: str = "",
) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(
        model_name="m", id=request_id, inputs=inputs, raw_input_contents=raw or []
    )
    for name in outputs or []:
        message.outputs.add(name=name)
    return message


def rows(n: int = 2) -> np.ndarray:
    return np.arange(n * 4, dtype=np.float64).reshape(n, 4) / 10


def header(name: str, datatype: str, shape: list[int]) -> pb.ModelInferRequest.InferInputTensor:
    return pb.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=shape)


def length_prefixed(*texts: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(t)) + t for t in texts)


# -- typed contents ------------------------------------------------------------------------


def test_typed_tensor_decodes_to_the_declared_shape() -> None:
    data = rows()
    decoded = decode_infer(
        request(
            typed("input", "FP64", [2, 4], "fp64_contents", data.ravel().tolist()), request_id="r-1"
        ),
        IRIS,
    )
    np.testing.assert_array_equal(decoded.arrays["input"], data)
    assert decoded.extras.request_id == "r-1"
    assert decoded.extras.outputs == (("label", False), ("probabilities", False))


@pytest.mark.parametrize(
    ("datatype", "field", "values", "dtype"),
    [
        ("BOOL", "bool_contents", [True, False], np.bool_),
        ("INT8", "int_contents", [-128, 127], np.int8),
        ("UINT16", "uint_contents", [0, 65535], np.uint16),
        ("INT64", "int64_contents", [-(2**63), 2**63 - 1], np.int64),
        ("UINT64", "uint64_contents", [0, 2**64 - 1], np.uint64),
        ("FP32", "fp32_contents", [0.5, -1.25], np.float32),
    ],
)
def test_each_datatype_reads_its_own_field(
    datatype: str, field: str, values: list[Any], dtype: type
) -> None:
    decoded = decode_infer(request(typed("x", datatype, [2], field, values)), columns(x="float64"))
    array = decoded.arrays["x"]
    assert array.dtype == np.dtype(dtype)
    assert array.tolist() == values


def test_bytes_contents_arrive_as_text() -> None:
    decoded = decode_infer(
        request(typed("city", "BYTES", [2], "bytes_contents", [b"paris", "nîmes".encode()])),
        columns(city="string"),
    )
    assert decoded.arrays["city"].tolist() == ["paris", "nîmes"]


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (typed("x", "INT8", [1], "int_contents", [300]), "must lie in [-128, 127]"),
        (typed("x", "FP64", [3], "fp64_contents", [1.0, 2.0]), "has 2 elements, shape [3] needs 3"),
        (
            typed("x", "FP64", [2], "fp32_contents", [1.0, 2.0]),
            "FP64 elements go in contents.fp64_contents, not fp32_contents",
        ),
        (typed("x", "FP16", [1], "fp32_contents", [1.0]), "FP16 has no typed contents"),
        (typed("x", "FP99", [1], "fp64_contents", [1.0]), "datatype 'FP99' is not one of"),
        (typed("x", "FP64", [-1], "fp64_contents", [1.0]), "shape must be a list of integers >= 0"),
        (typed("x", "BYTES", [1], "bytes_contents", [b"\xff"]), "is not UTF-8 text"),
    ],
)
def test_typed_mistakes_are_400s_naming_the_field(tensor: Any, message: str) -> None:
    with pytest.raises(MalformedRequestError, match=None) as error:
        decode_infer(request(tensor), columns(x="float64"))
    assert message in error.value.detail
    assert error.value.status == 400


# -- raw contents --------------------------------------------------------------------------


def test_raw_tensor_is_little_endian_row_major() -> None:
    data = rows(3)
    decoded = decode_infer(
        request(header("input", "FP64", [3, 4]), raw=[data.astype("<f8").tobytes()]), IRIS
    )
    np.testing.assert_array_equal(decoded.arrays["input"], data)
    assert decoded.extras.outputs == (("label", True), ("probabilities", True))


def test_raw_bytes_and_fp16_columns() -> None:
    decoded = decode_infer(
        request(
            header("city", "BYTES", [2]),
            header("size", "FP16", [2]),
            raw=[length_prefixed(b"lyon", b""), np.array([1.5, 2], "<f2").tobytes()],
        ),
        columns(city="string", size="float64"),
    )
    assert decoded.arrays["city"].tolist() == ["lyon", ""]
    assert decoded.arrays["size"].tolist() == [1.5, 2.0]


@pytest.mark.parametrize(
    ("message_", "expected"),
    [
        (
            request(header("input", "FP64", [1, 4]), raw=[b"\0" * 31]),
            "31 bytes, shape [1, 4] of float64 needs 32",
        ),
        (
            request(header("input", "FP64", [1, 4]), header("b", "FP64", [1]), raw=[b"\0" * 32]),
            "1 raw_input_contents for 2 inputs",
        ),
        (
            request(
                typed("input", "FP64", [1, 4], "fp64_contents", [1, 2, 3, 4]), raw=[b"\0" * 32]
            ),
            "send contents or raw_input_contents, not both",
        ),
        (request(header("input", "BYTES", [1]), raw=[b"\x05\0\0\0ab"]), "BYTES data is truncated"),
        (request(), "send at least one input tensor"),
        (
            request(header("input", "FP64", [0, 4]), raw=[b""], outputs=["score"]),
            "unknown output 'score'",
        ),
        (
            request(header("input", "FP64", [0, 4]), raw=[b""], outputs=["label", "label"]),
            "must name an output, once",
        ),
    ],
)
def test_raw_and_request_mistakes_are_400s(message_: pb.ModelInferRequest, expected: str) -> None:
    with pytest.raises(MalformedRequestError) as error:
        decode_infer(message_, IRIS)
    assert expected in error.value.detail


def test_payload_size_counts_raw_bytes_and_typed_elements() -> None:
    assert payload_size(request(header("input", "FP64", [1, 4]), raw=[b"\0" * 32])) == 32
    assert payload_size(request(typed("x", "INT8", [3], "int_contents", [1, 2, 3]))) == 24


# -- outputs -------------------------------------------------------------------------------


def test_requested_outputs_come_back_in_request_order() -> None:
    decoded = decode_infer(
        request(header("input", "FP64", [0, 4]), raw=[b""], outputs=["probabilities", "label"]),
        IRIS,
    )
    assert decoded.extras.outputs == (("probabilities", True), ("label", True))


def test_raw_request_gets_raw_outputs() -> None:
    decoded = decode_infer(request(header("input", "FP64", [0, 4]), raw=[b""]), IRIS)
    outputs = {
        "label": np.array([2, 0]),
        "probabilities": np.full((2, 3), 0.25),
        "extra": np.zeros(2),
    }
    label, probabilities = encode_outputs(outputs, decoded.extras)
    assert (label.name, label.datatype, label.shape) == ("label", "INT64", [2])
    assert label.raw == np.array([2, 0], "<i8").tobytes()
    assert probabilities.raw == np.full(6, 0.25, "<f8").tobytes()


def test_typed_request_gets_typed_outputs() -> None:
    decoded = decode_infer(request(typed("input", "FP64", [0, 4], "fp64_contents", [])), IRIS)
    label, probabilities = encode_outputs(
        {"label": np.array(["setosa"], dtype=object), "probabilities": np.eye(1, 3)}, decoded.extras
    )
    assert (label.datatype, label.raw, label.field) == ("BYTES", None, "bytes_contents")
    assert list(label.values) == [b"setosa"]
    assert (probabilities.field, list(probabilities.values)) == ("fp64_contents", [1, 0, 0])
    assert probabilities.shape == [1, 3]


def test_fp16_output_has_no_typed_field_so_all_go_raw() -> None:
    decoded = decode_infer(request(typed("input", "FP64", [0, 4], "fp64_contents", [])), IRIS)
    outputs = encode_outputs(
        {"label": np.array([1]), "probabilities": np.ones((1, 3), "f2")}, decoded.extras
    )
    assert [o.raw for o in outputs] == [np.array([1], "<i8").tobytes(), np.ones(3, "<f2").tobytes()]
