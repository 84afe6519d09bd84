"""V2 wire codec: datatypes, JSON and binary tensors in, JSON and binary out, every 400."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pytest
from tritonclient.http import InferResult

from modelport.codecs.v2 import (
    DATATYPES,
    OutputTensor,
    datatype_of,
    decode_request,
    encode_response,
    from_json,
    platform,
)
from modelport.codecs.v2_binary import from_binary, to_binary
from modelport.errors import MalformedRequestError


def tensor(
    data: Any = None,
    *,
    name: str = "x",
    shape: list[int] | None = None,
    datatype: str = "FP64",
    **extra: Any,
) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": name,
        "shape": [2, 2] if shape is None else shape,
        "datatype": datatype,
        **extra,
    }
    if data is not None:
        raw["data"] = data
    return raw


def body(*inputs: dict[str, Any], **fields: Any) -> bytes:
    return orjson.dumps({"inputs": list(inputs) or [tensor([1, 2, 3, 4])], **fields})


def binary_body(header: dict[str, Any], *chunks: bytes) -> tuple[bytes, str]:
    head = orjson.dumps(header)
    return head + b"".join(chunks), str(len(head))


def bytes_elements(*texts: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(t)) + t for t in texts)


# -- datatypes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("float64", "FP64"),
        ("float32", "FP32"),
        ("float16", "FP16"),
        ("int64", "INT64"),
        ("int8", "INT8"),
        ("uint16", "UINT16"),
        ("bool", "BOOL"),
        ("string", "BYTES"),
        (np.dtype("<U5"), "BYTES"),
        (np.dtype(object), "BYTES"),
        (np.dtype(np.uint64), "UINT64"),
    ],
)
def test_datatype_of_signature_and_numpy_dtypes(dtype: Any, expected: str) -> None:
    assert datatype_of(dtype) == expected


def test_there_are_exactly_the_thirteen_protocol_datatypes() -> None:
    assert len(DATATYPES) == 13
    assert {datatype_of(d) for d in DATATYPES.values()} == set(DATATYPES)


# -- JSON tensors ------------------------------------------------------------------------


def test_flat_and_nested_data_decode_identically() -> None:
    flat = decode_request(body(tensor([1.5, 2, 3, 4])), None).inputs[0].array
    nested = decode_request(body(tensor([[1.5, 2], [3, 4]])), None).inputs[0].array
    np.testing.assert_array_equal(flat, nested)
    assert flat.shape == (2, 2)
    assert flat.dtype == np.float64


@pytest.mark.parametrize(
    ("datatype", "data", "dtype"),
    [
        ("FP32", [1, 2], np.float32),
        ("INT32", [1.0, 2.0], np.int32),
        ("UINT8", [0, 255], np.uint8),
        ("BOOL", [True, False], np.bool_),
        ("BYTES", ["a", "é"], np.dtype(object)),
        ("FP16", [0.5, 1], np.float16),
    ],
)
def test_json_values_are_cast_to_the_declared_datatype(
    datatype: str, data: list[Any], dtype: Any
) -> None:
    array = from_json(data, datatype, (2,), "/inputs/0/data")
    assert array.dtype == dtype
    assert array.tolist() == data


def test_null_becomes_nan_and_the_signature_decides() -> None:
    floats = from_json([1.0, None], "FP64", (2,), "/p")
    integers = from_json([1, None], "INT64", (2,), "/p")
    assert np.isnan(floats[1])
    assert integers.dtype == np.float64
    assert np.isnan(integers[1])


def test_empty_tensor_keeps_its_shape() -> None:
    array = from_json([], "FP32", (0, 4), "/p")
    assert array.shape == (0, 4)
    assert array.dtype == np.float32


def test_request_fields_id_outputs_and_binary_choice() -> None:
    decoded = decode_request(
        body(
            id="req-7",
            parameters={"binary_data_output": True, "priority": 3, "custom": "x"},
            outputs=[{"name": "b", "parameters": {"binary_data": False}}, {"name": "a"}],
        ),
        None,
    )
    assert decoded.request_id == "req-7"
    assert decoded.binary_output is True
    assert [(o.name, o.binary) for o in decoded.outputs] == [("b", False), ("a", None)]


def test_boolean_parameters_do_not_hide_boolean_data() -> None:
    decoded = decode_request(
        body(
            tensor([True, False], shape=[2], datatype="BOOL"),
            tensor([1.0, 2.0], name="y", shape=[2]),
            parameters={"binary_data_output": True},
        ),
        None,
    )
    assert decoded.inputs[0].array.tolist() == [True, False]
    assert decoded.inputs[1].array.tolist() == [1.0, 2.0]


def test_unknown_parameters_are_ignored_at_every_level() -> None:
    decoded = decode_request(
        body(
            tensor([1, 2, 3, 4], parameters={"content_type": "np", "anything": [1]}),
            parameters={"sequence_id": 4, "timeout": 10},
        ),
        None,
    )
    assert decoded.binary_output is False
    assert decoded.request_id is None
    assert decoded.outputs == ()


# -- binary tensors ----------------------------------------------------------------------


@pytest.mark.parametrize("datatype", [d for d in DATATYPES if d != "BYTES"])
def test_binary_round_trip_for_every_numeric_datatype(datatype: str) -> None:
    original = (
        (np.arange(6) % 2 == 1 if datatype == "BOOL" else np.arange(6))
        .astype(DATATYPES[datatype])
        .reshape(2, 3)
    )
    raw = to_binary(original)
    assert len(raw) == original.nbytes
    decoded = from_binary(memoryview(raw), DATATYPES[datatype], (2, 3), "/p")
    np.testing.assert_array_equal(decoded, original)
    assert decoded.dtype == original.dtype


def test_binary_bytes_round_trip_as_text() -> None:
    original = np.array([["paris", ""], ["zürich", "nice"]], dtype=object)
    raw = to_binary(original)
    assert raw[:9] == struct.pack("<I", 5) + b"paris"
    decoded = from_binary(memoryview(raw), DATATYPES["BYTES"], (2, 2), "/p")
    assert decoded.tolist() == original.tolist()


def test_binary_request_mixes_binary_and_json_inputs_in_order() -> None:
    floats = np.array([[1.0, 2.0]], dtype="<f4")
    header = {
        "inputs": [
            tensor(shape=[1, 2], datatype="FP32", parameters={"binary_data_size": 8}),
            tensor([7], name="y", shape=[1], datatype="INT64"),
            tensor(name="z", shape=[2], datatype="BYTES", parameters={"binary_data_size": 14}),
        ]
    }
    raw, length = binary_body(header, floats.tobytes(), bytes_elements(b"ab", b"cdef"))
    first, second, third = decode_request(raw, length).inputs
    np.testing.assert_array_equal(first.array, floats)
    assert second.array.tolist() == [7]
    assert third.array.tolist() == ["ab", "cdef"]
    assert (first.pointer(), third.pointer("shape")) == ("/inputs/0/data", "/inputs/2/shape")


# -- every client mistake: 400 with a pointer --------------------------------------------


_BAD_JSON: list[tuple[bytes, str]] = [
    (b"", ""),
    (b"[1]", ""),
    (b"{bad", ""),
    (b'"x"', ""),
    (b'{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[NaN]}]}', ""),
    (b'{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[Infinity]}]}', ""),
    (orjson.dumps({}), "/inputs"),
    (orjson.dumps({"inputs": []}), "/inputs"),
    (orjson.dumps({"inputs": {"x": [1]}}), "/inputs"),
    (body(id=5), "/id"),
    (body(id=None), "/id"),
    (body(parameters=[1]), "/parameters"),
    (body(tensor([1, 2, 3, 4]), 3), "/inputs/1"),
    (body({"shape": [1], "datatype": "FP64", "data": [1]}), "/inputs/0/name"),
    (body(tensor([1, 2, 3, 4], datatype="fp64")), "/inputs/0/datatype"),
    (body(tensor([1, 2, 3, 4], datatype="FLOAT")), "/inputs/0/datatype"),
    (body(tensor([1, 2, 3, 4], datatype=["FP64"])), "/inputs/0/datatype"),
    (body(tensor([1, 2, 3, 4], datatype={"FP64": 1})), "/inputs/0/datatype"),
    (body({"name": "x", "shape": [4], "data": [1, 2, 3, 4]}), "/inputs/0/datatype"),
    (body(tensor([1, 2, 3, 4], shape=[-1, 2])), "/inputs/0/shape"),
    (body(tensor([1, 2, 3, 4], shape=[2.0, 2])), "/inputs/0/shape"),
    (body(tensor([1], shape=[True])), "/inputs/0/shape"),
    (body(tensor([1, 2, 3, 4], shape="4")), "/inputs/0/shape"),
    (body({"name": "x", "datatype": "FP64", "data": [1]}), "/inputs/0/shape"),
    (body(tensor()), "/inputs/0/data"),
    (body(tensor(5, shape=[1])), "/inputs/0/data"),
    (body(tensor([1, 2, 3])), "/inputs/0/data"),
    (body(tensor([[1, 2], [3]])), "/inputs/0/data"),
    (body(tensor([[1, 2], [3, 4]], shape=[4])), "/inputs/0/data"),
    (body(tensor([[1, 2, 3, 4]], shape=[2, 2])), "/inputs/0/data"),
    (body(tensor([1, 2, 3, "4"])), "/inputs/0/data"),
    (body(tensor([1.5, None, "a", 2])), "/inputs/0/data"),
    (body(tensor([True, False, True, True])), "/inputs/0/data"),
    (body(tensor([1.5, True, 2, 3])), "/inputs/0/data"),
    (body(tensor([[1, 2], [3, False]], datatype="INT64")), "/inputs/0/data"),
    (
        body(
            tensor([1.5, True, 2, 3]),
            parameters={"binary_data_output": True},
            outputs=[{"name": "a", "parameters": {"binary_data": False}}],
        ),
        "/inputs/0/data",
    ),
    (body(tensor([1, 0, 1, 0], datatype="BOOL")), "/inputs/0/data"),
    (body(tensor([1, 2, 3, 4], datatype="BYTES")), "/inputs/0/data"),
    (body(tensor(["a", "b", "c", 4], datatype="BYTES")), "/inputs/0/data"),
    (body(tensor([["a", "b"], ["c", True]], datatype="BYTES")), "/inputs/0/data"),
    (body(tensor([["a", "b"], ["c"]], datatype="BYTES")), "/inputs/0/data"),
    (body(tensor([1.5, 2, 3, 4], datatype="INT64")), "/inputs/0/data"),
    (body(tensor([0, 1, 2, 300], datatype="UINT8")), "/inputs/0/data"),
    (body(tensor([0, 1, 2, -1], datatype="UINT32")), "/inputs/0/data"),
    (body(tensor([[1, 2], [3, 4]], parameters=[])), "/inputs/0/parameters"),
    (body(tensor([1, 2, 3, 4]), tensor([1, 2], name="y", shape=[3])), "/inputs/1/data"),
    (body(outputs={"name": "a"}), "/outputs"),
    (body(outputs=["a"]), "/outputs/0"),
    (body(outputs=[{"name": 1}]), "/outputs/0/name"),
    (body(outputs=[{"name": "a"}, {"name": "a"}]), "/outputs/1/name"),
    (body(outputs=[{"name": "a", "parameters": True}]), "/outputs/0/parameters"),
]


@pytest.mark.parametrize(("raw", "pointer"), _BAD_JSON, ids=[p or "body" for _, p in _BAD_JSON])
def test_malformed_json_requests_are_400_naming_the_field(raw: bytes, pointer: str) -> None:
    with pytest.raises(MalformedRequestError) as caught:
        decode_request(raw, None)
    assert caught.value.status == 400
    assert caught.value.pointer == pointer, caught.value.detail


_SIZE = "/inputs/0/parameters/binary_data_size"


def _one_binary(
    size: Any, datatype: str = "FP32", shape: list[int] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "inputs": [
            tensor(
                shape=shape or [2],
                datatype=datatype,
                parameters={"binary_data_size": size},
                **extra,
            )
        ]
    }


_BAD_BINARY: list[tuple[bytes, str | None, str]] = [
    (orjson.dumps(_one_binary(8)), None, _SIZE),
    (*binary_body(_one_binary(8), b"\0" * 4), _SIZE),
    (*binary_body(_one_binary(4), b"\0" * 4), _SIZE),
    (*binary_body(_one_binary(-8), b"\0" * 8), _SIZE),
    (*binary_body(_one_binary("8"), b"\0" * 8), _SIZE),
    (*binary_body(_one_binary(8, data=[1.0, 2.0]), b"\0" * 8), _SIZE),
    (*binary_body(_one_binary(8), b"\0" * 12), "/inputs"),
    (*binary_body(_one_binary(6, "BYTES"), b"\1\0\0\0ab"), _SIZE),
    (*binary_body(_one_binary(3, "BYTES"), b"\1\0\0"), _SIZE),
    (*binary_body(_one_binary(6, "BYTES", [2]), bytes_elements(b"\xff\xfe")), _SIZE),
    (*binary_body(_one_binary(5, "BYTES", [2]), bytes_elements(b"a")), _SIZE),
    (b'{"inputs": []}', "abc", ""),
    (b'{"inputs": []}', "-1", ""),
    (b'{"inputs": []}', "999", ""),
    (b'{"inputs": []}', "0", ""),
]


@pytest.mark.parametrize(
    ("raw", "length", "pointer"), _BAD_BINARY, ids=[p or "header-length" for *_, p in _BAD_BINARY]
)
def test_malformed_binary_requests_are_400_naming_the_field(
    raw: bytes, length: str | None, pointer: str
) -> None:
    with pytest.raises(MalformedRequestError) as caught:
        decode_request(raw, length)
    assert caught.value.pointer == pointer, caught.value.detail


# -- responses ---------------------------------------------------------------------------


def _outputs(binary: bool) -> list[OutputTensor]:
    return [
        OutputTensor("label", np.array(["setosa", "virginica"], dtype=object), binary),
        OutputTensor("probabilities", np.array([[0.9, 0.1], [0.2, 0.8]]), binary),
        OutputTensor("flags", np.array([True, False]), False),
    ]


def test_json_response_is_flat_row_major_with_datatypes() -> None:
    raw, header_length = encode_response({"model_name": "m", "id": "7"}, _outputs(False))
    assert header_length is None
    answer = orjson.loads(raw)
    assert answer["model_name"] == "m"
    assert answer["id"] == "7"
    assert answer["outputs"] == [
        {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["setosa", "virginica"]},
        {
            "name": "probabilities",
            "datatype": "FP64",
            "shape": [2, 2],
            "data": [0.9, 0.1, 0.2, 0.8],
        },
        {"name": "flags", "datatype": "BOOL", "shape": [2], "data": [True, False]},
    ]


def test_binary_response_is_read_back_by_tritonclient() -> None:
    raw, header_length = encode_response({"model_name": "m"}, _outputs(True))
    assert header_length is not None
    header = orjson.loads(raw[:header_length])
    assert [o.get("parameters") for o in header["outputs"]] == [
        {"binary_data_size": 23},
        {"binary_data_size": 32},
        None,
    ]
    result = InferResult.from_response_body(raw, header_length=header_length)
    assert result.as_numpy("label").tolist() == [b"setosa", b"virginica"]
    np.testing.assert_array_equal(result.as_numpy("probabilities"), [[0.9, 0.1], [0.2, 0.8]])
    assert result.as_numpy("flags").tolist() == [True, False]


def test_non_contiguous_outputs_are_written_row_major() -> None:
    transposed = np.arange(6, dtype=np.int32).reshape(3, 2).T
    raw, _ = encode_response({}, [OutputTensor("t", transposed, False)])
    assert orjson.loads(raw)["outputs"][0]["data"] == transposed.ravel().tolist()
    assert to_binary(transposed) == np.ascontiguousarray(transposed).tobytes()


@pytest.mark.parametrize(
    ("raw", "datatype"),
    [
        (b"[18446744073709551616]", "UINT64"),  # parsed as a float that rounds like 2**64 - 1
        (b"[9223372036854775808.0]", "INT64"),
        (b"[256.0]", "UINT8"),
    ],
)
def test_integers_past_the_datatype_are_refused_not_wrapped(raw: bytes, datatype: str) -> None:
    with pytest.raises(MalformedRequestError, match="must lie in"):
        from_json(orjson.loads(raw), datatype, (1,), "/inputs/0/data")


def test_the_largest_integers_of_each_datatype_pass() -> None:
    assert from_json([2**64 - 1], "UINT64", (1,), "/p").tolist() == [2**64 - 1]
    assert from_json([-(2**63)], "INT64", (1,), "/p").tolist() == [-(2**63)]


@pytest.mark.parametrize(
    ("flavor", "options", "expected"),
    [
        ("sklearn", {"format": "skops"}, "sklearn_skops"),
        ("sklearn", {"format": "joblib"}, "sklearn_joblib"),
        ("onnx", {}, "onnx_onnxv1"),
        ("lightgbm", {}, "lightgbm_text"),
        ("xgboost", {}, "xgboost_ubj"),
        ("pyfunc", {}, "pyfunc_python"),
        ("unknown", {}, "unknown"),
    ],
)
def test_platform_names_come_from_each_flavor(
    flavor: str, options: dict[str, Any], expected: str
) -> None:
    assert platform(flavor, options) == expected
