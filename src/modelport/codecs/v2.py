"""Open Inference Protocol V2 tensors on the wire (docs/protocols.md, V2 and its binary
tensor data extension).

Pure functions, no app: a request body (JSON, or JSON header plus raw bytes of the binary
tensor extension) becomes numpy arrays shaped as the client declared them, matched onto the
model's signature; output arrays become a JSON or binary response body. Every client mistake
is a 400 that points at the field (``/inputs/0/shape``). The gRPC transport shares the
signature matching, output selection and metadata.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from modelport.codecs.decoded import Decoded, check_input_count
from modelport.codecs.json import as_array
from modelport.codecs.v2_binary import BinaryReader, as_text, from_binary, to_binary
from modelport.errors import InvalidInputError, MalformedRequestError
from modelport.registry import VersionRecord
from modelport.runtimes.base import flavors
from modelport.runtimes.signature import STRING, Signature, SignatureKind, TensorSpec

DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
_BY_NUMPY = {dtype: name for name, dtype in DATATYPES.items() if name != "BYTES"}
MAX_DIMENSIONS = 32
MAX_DIMENSION = 2**40
EXTENSIONS = ("binary_tensor_data",)


def datatype_of(dtype: np.dtype[Any] | str) -> str:
    """The V2 datatype of a numpy dtype or signature dtype name; text and objects are BYTES."""
    if isinstance(dtype, str):
        if dtype == "string":
            return "BYTES"
        dtype = np.dtype(dtype)
    return _BY_NUMPY.get(dtype, "BYTES")


@dataclass(frozen=True, slots=True)
class InputTensor:
    """One decoded input: ``array`` already has the declared shape."""

    index: int
    name: str
    datatype: str
    array: np.ndarray

    def pointer(self, field: str = "data") -> str:
        """Where a field of this input sits in the request, for error messages."""
        return f"/inputs/{self.index}/{field}"


@dataclass(frozen=True, slots=True)
class RequestedOutput:
    """An output the client named; ``binary`` is None when it left the choice to the request."""

    name: str
    binary: bool | None


@dataclass(frozen=True, slots=True)
class InferRequest:
    inputs: tuple[InputTensor, ...]
    outputs: tuple[RequestedOutput, ...]
    request_id: str | None
    binary_output: bool


def decode_request(body: bytes, header_length: str | None) -> InferRequest:
    """A whole request body; ``header_length`` is the Inference-Header-Content-Length value."""
    payload, binary, booleans = _split(body, header_length)
    request_id = payload.get("id")
    if "id" in payload and not isinstance(request_id, str):
        raise MalformedRequestError("'id' must be a string", pointer="/id")
    parameters = _object(payload.get("parameters", {}), "/parameters")
    raw_inputs = payload.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise MalformedRequestError(
            "'inputs' must be a non-empty list of tensors", pointer="/inputs"
        )
    check_input_count(len(raw_inputs), "/inputs")
    reader = BinaryReader(binary)
    inputs = tuple(_decode_input(i, raw, reader, booleans) for i, raw in enumerate(raw_inputs))
    reader.finish()
    return InferRequest(
        inputs,
        _requested_outputs(payload.get("outputs")),
        request_id,
        parameters.get("binary_data_output") is True,
    )


def _split(body: bytes, header_length: str | None) -> tuple[dict[str, Any], memoryview, bool]:
    """The JSON header as an object, the binary bytes after it, and whether data may be boolean."""
    end = len(body)
    if header_length is not None:
        digits = header_length.strip()
        if not (digits.isascii() and digits.isdigit() and len(digits) <= 18) or int(digits) > len(
            body
        ):
            raise MalformedRequestError(
                f"Inference-Header-Content-Length {header_length!r} must be a byte count "
                f"within the body ({len(body)} bytes)",
                pointer="",
            )
        end = int(digits)
    if end == 0:
        raise MalformedRequestError("the request body is empty; send a JSON object", pointer="")
    head = body if end == len(body) else body[:end]
    try:
        payload = _object(orjson.loads(head), "")
    except orjson.JSONDecodeError as exc:
        raise MalformedRequestError(f"the body is not valid JSON: {exc}", pointer="") from exc
    return payload, memoryview(body)[end:], _data_may_hold_booleans(head, payload)


def _data_may_hold_booleans(head: bytes, payload: dict[str, Any]) -> bool:
    """More ``true``/``false`` tokens than boolean parameters explain, so data must be walked.

    numpy turns ``[1.5, true]`` into ``[1.5, 1.0]``; but tritonclient's ``binary_data_output:
    true`` alone must not make every request pay for walking its data.
    """
    tokens = head.count(b"true") + head.count(b"false")
    if not tokens:
        return False
    holders = [payload]
    for key in ("inputs", "outputs"):
        if isinstance(payload.get(key), list):
            holders += [h for h in payload[key] if isinstance(h, dict)]
    explained = sum(
        isinstance(v, bool)
        for p in (h.get("parameters") for h in holders)
        if isinstance(p, dict)
        for v in p.values()
    )
    return tokens > explained


def _object(value: Any, pointer: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedRequestError(
            f"{pointer or 'the body'} must be a JSON object", pointer=pointer
        )
    return value


def _decode_input(index: int, raw: Any, reader: BinaryReader, booleans: bool) -> InputTensor:
    base = f"/inputs/{index}"
    raw = _object(raw, base)
    name = raw.get("name")
    if not isinstance(name, str):
        raise MalformedRequestError(f"{base}/name must be a string", pointer=f"{base}/name")
    datatype = tensor_datatype(raw.get("datatype"), name, f"{base}/datatype")
    shape = tensor_shape(raw.get("shape"), name, f"{base}/shape")
    size = _object(raw.get("parameters", {}), f"{base}/parameters").get("binary_data_size")
    if size is None:
        if "data" not in raw:
            raise MalformedRequestError(f"input {name!r} has no 'data'", pointer=f"{base}/data")
        array = from_json(raw["data"], datatype, shape, f"{base}/data", booleans=booleans)
    else:
        pointer = f"{base}/parameters/binary_data_size"
        if "data" in raw or not _is_count(size):
            raise MalformedRequestError(
                f"input {name!r}: binary_data_size must be a byte count, and 'data' absent",
                pointer=pointer,
            )
        array = from_binary(reader.take(size, pointer), DATATYPES[datatype], shape, pointer)
    return InputTensor(index, name, datatype, array)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def tensor_datatype(value: Any, name: str, pointer: str) -> str:
    """A declared datatype, checked against the V2 table."""
    if not isinstance(value, str) or value not in DATATYPES:  # a list or object is unhashable
        raise MalformedRequestError(
            f"input {name!r}: datatype {value!r} is not one of {', '.join(DATATYPES)}",
            pointer=pointer,
        )
    return str(value)


def tensor_shape(value: Any, name: str, pointer: str) -> tuple[int, ...]:
    """A declared shape, checked: counts >= 0, within the dimension limits."""
    if not isinstance(value, list) or not all(_is_count(d) for d in value):
        raise MalformedRequestError(
            f"input {name!r}: shape must be a list of integers >= 0 (-1 is only for "
            f"metadata), got {str(value)[:200]}",
            pointer=pointer,
        )
    if len(value) > MAX_DIMENSIONS or any(d > MAX_DIMENSION for d in value):
        raise MalformedRequestError(
            f"input {name!r}: a shape has at most {MAX_DIMENSIONS} dimensions of at most "
            f"{MAX_DIMENSION} each",
            pointer=pointer,
        )
    return tuple(value)


def from_json(
    data: Any, datatype: str, shape: tuple[int, ...], pointer: str, *, booleans: bool = True
) -> np.ndarray:
    """JSON data, flat or nested, as a ``shape`` array; ``booleans=False``: none to look for."""
    if not isinstance(data, list):
        raise MalformedRequestError(f"{pointer} must be a list", pointer=pointer)
    if datatype == "BYTES":  # as objects: numpy would turn 1 or true into the text "1", "True"
        array = np.asarray(data, dtype=object)
    else:
        array = as_array(data, pointer, check_booleans=booleans and datatype != "BOOL")
    expected = math.prod(shape)
    if array.size != expected:
        raise MalformedRequestError(
            f"{pointer} has {array.size} elements, shape {list(shape)} needs {expected}",
            pointer=pointer,
        )
    if array.ndim > 1 and array.shape != shape:
        raise MalformedRequestError(
            f"{pointer} is nested as {list(array.shape)}, which does not match shape {list(shape)}",
            pointer=pointer,
        )
    return _convert(array, datatype, pointer).reshape(shape)


def _convert(array: np.ndarray, datatype: str, pointer: str) -> np.ndarray:
    """Check that JSON values fit the declared datatype, and cast them to it."""
    target = DATATYPES[datatype]
    if array.size == 0:
        return array.astype(target)
    if datatype == "BYTES":
        if set(map(type, array.flat)) <= {str, type(None)}:
            return array
        raise MalformedRequestError(f"{pointer}: BYTES elements must be strings", pointer=pointer)
    if array.dtype.kind == "O":
        array = _nulls_to_nan(array, datatype, pointer)
    kind = array.dtype.kind
    if kind in "US" or (kind == "b") != (datatype == "BOOL"):
        got = {"U": "strings", "S": "strings", "b": "booleans"}.get(kind, "numbers")
        raise MalformedRequestError(
            f"{pointer}: {datatype} elements cannot be {got}", pointer=pointer
        )
    if target.kind in "iu" and kind in "iuf":
        return to_integers(array, datatype, pointer)
    return array.astype(target, copy=False)


def _nulls_to_nan(array: np.ndarray, datatype: str, pointer: str) -> np.ndarray:
    """JSON ``null`` as NaN; whether NaN is acceptable is the signature's call."""
    values = array.ravel().tolist()
    if not all(
        v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values
    ):
        raise MalformedRequestError(
            f"{pointer}: {datatype} elements must all be numbers", pointer=pointer
        )
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64).reshape(
        array.shape
    )


def to_integers(array: np.ndarray, datatype: str, pointer: str) -> np.ndarray:
    """Integers in range for ``datatype``; whole floats pass, NaN (null) stays for conform."""
    target = DATATYPES[datatype]
    values = array
    if array.dtype.kind == "f":
        values = array[~np.isnan(array)]
        if not np.all(np.mod(values, 1) == 0):
            raise MalformedRequestError(
                f"{pointer}: {datatype} elements must be integers", pointer=pointer
            )
    info = np.iinfo(target)
    # exclusive upper bound: as a float, 2**64 - 1 rounds up to 2**64, which does not fit
    if values.size and (values.min() < info.min or values.max() >= info.max + 1):
        raise MalformedRequestError(
            f"{pointer}: {datatype} elements must lie in [{info.min}, {info.max}]", pointer=pointer
        )
    return array if values.size < array.size else array.astype(target, copy=False)


def _requested_outputs(value: Any) -> tuple[RequestedOutput, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise MalformedRequestError("'outputs' must be a list", pointer="/outputs")
    requested: list[RequestedOutput] = []
    for index, raw in enumerate(value):
        name = _object(raw, f"/outputs/{index}").get("name")
        if not isinstance(name, str) or name in {r.name for r in requested}:
            raise MalformedRequestError(
                f"/outputs/{index}/name must be a string naming an output once",
                pointer=f"/outputs/{index}/name",
            )
        binary = _object(raw.get("parameters", {}), f"/outputs/{index}/parameters").get(
            "binary_data"
        )
        requested.append(RequestedOutput(name, binary if isinstance(binary, bool) else None))
    return tuple(requested)


@dataclass(frozen=True, slots=True)
class OutputTensor:
    name: str
    array: np.ndarray
    binary: bool


def encode_response(
    header: dict[str, Any], outputs: Sequence[OutputTensor]
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary outputs follow it."""
    tensors: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for output in outputs:
        array = output.array
        tensor: dict[str, Any] = {
            "name": output.name,
            "datatype": datatype_of(array.dtype),
            "shape": list(array.shape),
        }
        if output.binary:
            chunks.append(to_binary(array))
            tensor["parameters"] = {"binary_data_size": len(chunks[-1])}
        else:
            tensor["data"] = to_json(array)
        tensors.append(tensor)
    head = orjson.dumps({**header, "outputs": tensors}, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return head, None
    return b"".join([head, *chunks]), len(head)


def to_json(array: np.ndarray) -> Any:
    """Flat row-major data: numeric arrays go to orjson as they are, text as strings."""
    if array.dtype.kind in "biuf":
        return array.ravel()  # always C-contiguous, as orjson needs: a view, or a copy
    return [as_text(v) for v in array.ravel().tolist()]


@dataclass(frozen=True, slots=True)
class InferExtras:
    """What the response needs from the request: the outputs to return, and the client's id."""

    outputs: tuple[tuple[str, bool], ...]
    request_id: str | None


def decode_infer(
    body: bytes, header_length: str | None, signature: Signature
) -> Decoded[InferExtras]:
    """An HTTP infer body (JSON, or JSON + binary tensors) for ``signature``."""
    request = decode_request(body, header_length)
    return decoded_for(
        request.inputs, select_outputs(request, signature), request.request_id, signature
    )


def decoded_for(
    inputs: tuple[InputTensor, ...],
    outputs: list[tuple[str, bool]],
    request_id: str | None,
    signature: Signature,
) -> Decoded[InferExtras]:
    """Decoded tensors of any V2 transport (HTTP or gRPC) matched onto ``signature``."""
    arrays, pointers = match_signature(inputs, signature)
    return Decoded(arrays, pointers, InferExtras(tuple(outputs), request_id))


def select_outputs(decoded: InferRequest, signature: Signature) -> list[tuple[str, bool]]:
    """The outputs to return, in order, each with whether it goes out as binary."""
    default = decoded.binary_output
    names = [spec.name for spec in signature.outputs]
    if not decoded.outputs:
        return [(name, default) for name in names]
    for index, output in enumerate(decoded.outputs):
        if output.name not in names:
            raise MalformedRequestError(
                f"unknown output {output.name!r}; this model returns {', '.join(names)}",
                pointer=f"/outputs/{index}/name",
            )
    return [(o.name, default if o.binary is None else o.binary) for o in decoded.outputs]


def match_signature(
    inputs: tuple[InputTensor, ...], signature: Signature
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Request tensors as the signature's named inputs, plus the pointer each came from."""
    if signature.kind is SignatureKind.TENSOR:
        return _tensor_input(inputs, signature.inputs[0])
    names = signature.input_names()
    if len(inputs) == 1 and inputs[0].name not in names and _positional(inputs[0], signature):
        array, pointer = inputs[0].array, inputs[0].pointer()
        return ({name: array[:, i] for i, name in enumerate(names)}, dict.fromkeys(names, pointer))
    arrays: dict[str, np.ndarray] = {}
    for tensor in inputs:
        if tensor.name in arrays:
            raise MalformedRequestError(
                f"input {tensor.name!r} is sent twice", pointer=tensor.pointer("name")
            )
        array = tensor.array
        arrays[tensor.name] = array[:, 0] if array.ndim == 2 and array.shape[1] == 1 else array
    return arrays, {t.name: t.pointer() for t in inputs}


def _tensor_input(
    inputs: tuple[InputTensor, ...], spec: TensorSpec
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """A tensor model takes one ``[N, features]`` tensor, under its own name or any other."""
    if len(inputs) != 1:
        raise InvalidInputError(
            f"this model takes one input tensor {spec.name!r} of shape "
            f"{list(spec.shape)}, got {len(inputs)}",
            pointer="/inputs",
        )
    tensor = inputs[0]
    if tensor.array.ndim != len(spec.shape):
        raise InvalidInputError(
            f"input {tensor.name!r} must have shape {list(spec.shape)} (-1: any), got "
            f"{list(tensor.array.shape)}",
            pointer=tensor.pointer("shape"),
        )
    return {spec.name: tensor.array}, {spec.name: tensor.pointer()}


def _positional(tensor: InputTensor, signature: Signature) -> bool:
    """One ``[N, n_columns]`` tensor may stand for all-numeric columns, in signature order."""
    return (
        tensor.array.ndim == 2
        and tensor.array.shape[1] == len(signature.inputs)
        and all(spec.dtype != STRING for spec in signature.inputs)
    )


def metadata(record: VersionRecord) -> dict[str, Any]:
    """Model metadata from the signature; only the serving version can be named in ``{v}``."""
    return {
        "name": record.name,
        "versions": [str(record.version)],
        "platform": platform(record.flavor, record.flavor_options),
        "inputs": [_tensor_metadata(s) for s in record.signature.inputs],
        "outputs": [_tensor_metadata(s) for s in record.signature.outputs],
    }


def platform(flavor: str, options: Mapping[str, Any]) -> str:
    """``<framework>_<format>`` as V2 platforms are named (``sklearn_skops``, ``onnx_onnxv1``)."""
    installed = flavors().get(flavor)
    fmt = (installed.file_format if installed is not None else None) or options.get("format")
    return f"{flavor}_{fmt}" if fmt else flavor


def _tensor_metadata(spec: TensorSpec) -> dict[str, Any]:
    return {"name": spec.name, "datatype": datatype_of(spec.dtype), "shape": list(spec.shape)}


def encode_infer(
    record: VersionRecord, outputs: Mapping[str, np.ndarray], extras: InferExtras
) -> tuple[bytes, int | None]:
    """The infer response body, and the JSON header's length when binary outputs follow."""
    header: dict[str, Any] = {"model_name": record.name, "model_version": str(record.version)}
    if extras.request_id is not None:
        header["id"] = extras.request_id
    return encode_response(
        header, [OutputTensor(name, outputs[name], binary) for name, binary in extras.outputs]
    )
