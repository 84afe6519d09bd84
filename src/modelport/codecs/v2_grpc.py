"""Open Inference Protocol V2 tensors in gRPC messages (docs/grpc.md).

Pure functions, like :mod:`.v2`, whose checks they share: a ``ModelInferRequest`` becomes the
same :class:`~modelport.codecs.v2.InputTensor` tuple an HTTP body does, matched onto the
signature by :func:`~modelport.codecs.v2.decoded_for`, after the same datatype and shape
checks. Typed ``contents`` are read at their field's width, narrower integers range-checked as
JSON's are (:func:`~modelport.codecs.v2.to_integers`); ``raw_input_contents`` are read as the
binary extension's chunks (:func:`~modelport.codecs.v2_binary.from_binary`: little-endian,
each BYTES element after its 4-byte length).

The messages are read through the small protocols below, so this layer needs neither grpc nor
the generated classes (those belong to the transport, :mod:`modelport.serving.grpc`).

Raw in, raw out: tritonclient sends ``raw_input_contents`` and reads only
``raw_output_contents``. A client that sends typed contents gets typed contents back, unless an
output is FP16, which has no typed field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from modelport.codecs.decoded import Decoded, check_input_count
from modelport.codecs.v2 import (
    DATATYPES,
    InferExtras,
    InferRequest,
    InputTensor,
    RequestedOutput,
    datatype_of,
    decoded_for,
    select_outputs,
    tensor_datatype,
    tensor_shape,
    to_integers,
)
from modelport.codecs.v2_binary import as_text, from_binary, to_binary
from modelport.errors import MalformedRequestError
from modelport.runtimes.signature import Signature

CONTENTS_FIELDS: dict[str, str] = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
"""The ``InferTensorContents`` field of each datatype; FP16 has none and travels raw only."""

_FIELDS = tuple(dict.fromkeys(CONTENTS_FIELDS.values()))
_WIRE_DTYPES = {
    "bool_contents": np.bool_,
    "int_contents": np.int32,
    "int64_contents": np.int64,
    "uint_contents": np.uint32,
    "uint64_contents": np.uint64,
    "fp32_contents": np.float32,
    "fp64_contents": np.float64,
}


class Contents(Protocol):
    """``InferTensorContents``: a tensor's elements in the field of its datatype."""

    @property
    def bool_contents(self) -> Sequence[bool]: ...
    @property
    def int_contents(self) -> Sequence[int]: ...
    @property
    def int64_contents(self) -> Sequence[int]: ...
    @property
    def uint_contents(self) -> Sequence[int]: ...
    @property
    def uint64_contents(self) -> Sequence[int]: ...
    @property
    def fp32_contents(self) -> Sequence[float]: ...
    @property
    def fp64_contents(self) -> Sequence[float]: ...
    @property
    def bytes_contents(self) -> Sequence[bytes]: ...


class InputMessage(Protocol):
    """``ModelInferRequest.InferInputTensor``."""

    @property
    def name(self) -> str: ...
    @property
    def datatype(self) -> str: ...
    @property
    def shape(self) -> Sequence[int]: ...
    @property
    def contents(self) -> Contents: ...


class RequestedOutputMessage(Protocol):
    """``ModelInferRequest.InferRequestedOutputTensor``."""

    @property
    def name(self) -> str: ...


class InferRequestMessage(Protocol):
    """``ModelInferRequest``, as far as decoding reads it (the transport reads the name)."""

    @property
    def id(self) -> str: ...
    @property
    def inputs(self) -> Sequence[InputMessage]: ...
    @property
    def outputs(self) -> Sequence[RequestedOutputMessage]: ...
    @property
    def raw_input_contents(self) -> Sequence[bytes]: ...


def decode_infer(request: InferRequestMessage, signature: Signature) -> Decoded[InferExtras]:
    """A ``ModelInferRequest`` for ``signature``: the checks and result of an HTTP body."""
    raw, tensors = request.raw_input_contents, request.inputs
    if not tensors:
        raise MalformedRequestError("send at least one input tensor", pointer="/inputs")
    check_input_count(len(tensors), "/inputs")
    if raw and len(raw) != len(tensors):
        raise MalformedRequestError(
            f"{len(raw)} raw_input_contents for {len(tensors)} inputs; send one per input, "
            "in input order",
            pointer="/raw_input_contents",
        )
    inputs = tuple(
        _input(index, tensor, raw[index] if raw else None) for index, tensor in enumerate(tensors)
    )
    request_id = request.id or None
    wanted = InferRequest(inputs, _requested(request.outputs), request_id, bool(raw))
    return decoded_for(inputs, select_outputs(wanted, signature), request_id, signature)


def payload_size(request: InferRequestMessage) -> int:
    """About how many bytes of tensor data a request carries (typed elements counted as 8)."""
    typed = sum(len(getattr(t.contents, field)) for t in request.inputs for field in _FIELDS)
    return sum(map(len, request.raw_input_contents)) + 8 * typed


def _input(index: int, tensor: InputMessage, raw: bytes | None) -> InputTensor:
    base, name = f"/inputs/{index}", tensor.name
    datatype = tensor_datatype(tensor.datatype, name, f"{base}/datatype")
    shape = tensor_shape(list(tensor.shape), name, f"{base}/shape")
    sent = [field for field in _FIELDS if len(getattr(tensor.contents, field))]
    if raw is not None:
        if sent:
            raise MalformedRequestError(
                f"input {name!r}: send contents or raw_input_contents, not both",
                pointer=f"{base}/contents/{sent[0]}",
            )
        pointer = f"/raw_input_contents/{index}"
        return InputTensor(
            index, name, datatype, from_binary(memoryview(raw), DATATYPES[datatype], shape, pointer)
        )
    field = CONTENTS_FIELDS.get(datatype)
    if field is None:
        raise MalformedRequestError(
            f"input {name!r}: {datatype} has no typed contents; send it in raw_input_contents",
            pointer=f"{base}/contents",
        )
    strays = [other for other in sent if other != field]
    if strays:
        raise MalformedRequestError(
            f"input {name!r}: {datatype} elements go in contents.{field}, not {strays[0]}",
            pointer=f"{base}/contents/{strays[0]}",
        )
    return InputTensor(
        index,
        name,
        datatype,
        _typed(tensor.contents, field, datatype, shape, f"{base}/contents/{field}"),
    )


def _typed(
    contents: Contents, field: str, datatype: str, shape: tuple[int, ...], pointer: str
) -> np.ndarray:
    """Typed elements as an array of ``datatype``; INT8 ... UINT16 arrive widened, so
    their range is checked as JSON's is."""
    values = getattr(contents, field)
    if datatype == "BYTES":
        array = np.array([_text(v, pointer, i) for i, v in enumerate(values)], dtype=object)
    else:  # at the field's own width: exact, no detour through Python ints or floats
        array = np.array(values, dtype=_WIRE_DTYPES[field])
    count = math.prod(shape)
    if array.size != count:
        raise MalformedRequestError(
            f"{pointer} has {array.size} elements, shape {list(shape)} needs {count}",
            pointer=pointer,
        )
    if array.dtype.kind in "iu":
        array = to_integers(array, datatype, pointer)
    return array.reshape(shape)


def _text(value: bytes, pointer: str, index: int) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedRequestError(
            f"{pointer}: BYTES element {index} is not UTF-8 text", pointer=pointer
        ) from exc


def _requested(outputs: Sequence[RequestedOutputMessage]) -> tuple[RequestedOutput, ...]:
    names: list[str] = []
    for index, output in enumerate(outputs):
        if not output.name or output.name in names:
            raise MalformedRequestError(
                f"/outputs/{index}/name must name an output, once", pointer=f"/outputs/{index}/name"
            )
        names.append(output.name)
    return tuple(RequestedOutput(name, None) for name in names)


@dataclass(frozen=True, slots=True)
class OutputContents:
    """One output as the response carries it: ``raw`` bytes, or ``values`` for ``field``."""

    name: str
    datatype: str
    shape: list[int]
    raw: bytes | None
    field: str = ""
    values: Sequence[Any] = ()


def encode_outputs(outputs: Mapping[str, np.ndarray], extras: InferExtras) -> list[OutputContents]:
    """The requested outputs in order; all raw when the request was raw or a type needs it."""
    chosen = [(name, outputs[name], datatype_of(outputs[name].dtype)) for name, _ in extras.outputs]
    raw = any(binary for _, binary in extras.outputs) or any(
        datatype not in CONTENTS_FIELDS for _, _, datatype in chosen
    )
    return [_output(name, array, datatype, raw) for name, array, datatype in chosen]


def _output(name: str, array: np.ndarray, datatype: str, raw: bool) -> OutputContents:
    shape = list(array.shape)
    if raw:
        return OutputContents(name, datatype, shape, to_binary(array))
    elements = array.ravel().tolist()
    if datatype == "BYTES":
        elements = [as_text(value).encode() for value in elements]
    return OutputContents(name, datatype, shape, None, CONTENTS_FIELDS[datatype], elements)
