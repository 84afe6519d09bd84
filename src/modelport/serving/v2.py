"""Open Inference Protocol V2 (KServe V2 / Triton / MLServer) routes, protocols.md §1.

Every model path works with and without ``/versions/<v>``; names arrive URL-decoded, so
``iris%40production`` reaches :meth:`ModelHost.get` as ``iris@production``. The infer route
reads the body itself (no pydantic on the hot path): :mod:`v2_codec` turns it into arrays,
:func:`match_signature` maps them onto the model's inputs, and ``Signature.conform`` checks them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from starlette.responses import Response

import modelport
from modelport.errors import (
    InvalidInputError,
    MalformedRequestError,
    ModelNotReadyError,
    ModelVersionNotFoundError,
)
from modelport.registry import VersionRecord
from modelport.runtimes.signature import STRING, Signature, SignatureKind, TensorSpec
from modelport.serving.context import context
from modelport.serving.encoding import JSONBytes
from modelport.serving.host import Deployed
from modelport.serving.routes import HotRoutes
from modelport.serving.v2_codec import (
    InferRequest,
    InputTensor,
    OutputTensor,
    datatype_of,
    decode_request,
    encode_response,
)

router = APIRouter(tags=["Open Inference Protocol V2"])
hot = HotRoutes("Open Inference Protocol V2")

BINARY_HEADER = "Inference-Header-Content-Length"
EXTENSIONS = ["binary_tensor_data"]
_PLATFORM_FORMATS = {"onnx": "onnxv1", "lightgbm": "text", "xgboost": "ubj", "pyfunc": "python"}

_INFER_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {
    "type": "object", "required": ["inputs"], "description": (
        "Content-Type is optional. With the Inference-Header-Content-Length header the body "
        "is this JSON followed by raw tensors (binary tensor data extension)."),
    "properties": {"id": {"type": "string"}, "parameters": {"type": "object"},
                   "inputs": {"type": "array", "items": {"type": "object"}},
                   "outputs": {"type": "array", "items": {"type": "object"}}},
    "example": {"id": "42", "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64",
                                        "data": [5.1, 3.5, 1.4, 0.2]}],
                "outputs": [{"name": "probabilities"}]}}}}}}


@router.get("/v2")
async def server_metadata() -> dict[str, Any]:
    """Server name, version, and the extensions clients may use (binary tensors)."""
    return {"name": "modelport", "version": modelport.__version__, "extensions": EXTENSIONS}


@router.get("/v2/health/live")
async def server_live() -> dict[str, bool]:
    """Liveness: the process answers."""
    return {"live": True}


@router.get("/v2/health/ready")
async def server_ready(request: Request) -> dict[str, bool]:
    """Readiness: every served model is loaded (503 otherwise, as clients only read status)."""
    if not context(request).host.ready():
        raise ModelNotReadyError("not every served model is loaded yet")
    return {"ready": True}


@router.get("/v2/models/{name}")
async def model_metadata(request: Request, name: str) -> dict[str, Any]:
    """Inputs and outputs of the version the name routes to, from its signature."""
    return metadata(_deployed(request, name, None).record)


@router.get("/v2/models/{name}/versions/{version}")
async def model_version_metadata(request: Request, name: str, version: str) -> dict[str, Any]:
    return metadata(_deployed(request, name, version).record)


@router.get("/v2/models/{name}/ready")
async def model_ready(request: Request, name: str) -> dict[str, Any]:
    """200 when the model can serve now; 404 unknown, 503 still loading."""
    return {"name": _deployed(request, name, None).record.name, "ready": True}


@router.get("/v2/models/{name}/versions/{version}/ready")
async def model_version_ready(request: Request, name: str, version: str) -> dict[str, Any]:
    return {"name": _deployed(request, name, version).record.name, "ready": True}


@hot.post("/v2/models/{name}/infer", summary="Infer", body=_INFER_BODY)
@hot.post("/v2/models/{name}/versions/{version}/infer", summary="Infer with a version",
          body=_INFER_BODY)
async def infer(request: Request) -> Response:
    """Predict; JSON, or with ``Inference-Header-Content-Length`` JSON plus binary tensors."""
    params = request.path_params
    return await _infer(request, _deployed(request, params["name"], params.get("version")))


def _deployed(request: Request, name: str, version: str | None) -> Deployed:
    """The deployed version for a path; a version that is not a number is simply not found."""
    if version is not None and not (version.isascii() and version.isdigit()):
        raise ModelVersionNotFoundError(f"model {name!r} has no version {version!r}")
    deployed = context(request).host.get(name, int(version) if version is not None else None)
    request.state.model, request.state.version = deployed.record.name, deployed.record.version
    return deployed


def metadata(record: VersionRecord) -> dict[str, Any]:
    """Model metadata from the signature; only the serving version can be named in ``{v}``."""
    return {"name": record.name, "versions": [str(record.version)],
            "platform": platform(record.flavor, record.flavor_options),
            "inputs": [_tensor_metadata(s) for s in record.signature.inputs],
            "outputs": [_tensor_metadata(s) for s in record.signature.outputs]}


def platform(flavor: str, options: Mapping[str, Any]) -> str:
    """``<framework>_<format>`` as V2 platforms are named (``sklearn_skops``, ``onnx_onnxv1``)."""
    fmt = _PLATFORM_FORMATS.get(flavor) or options.get("format")
    return f"{flavor}_{fmt}" if fmt else flavor


def _tensor_metadata(spec: TensorSpec) -> dict[str, Any]:
    return {"name": spec.name, "datatype": datatype_of(spec.dtype), "shape": list(spec.shape)}


async def _infer(request: Request, deployed: Deployed) -> Response:
    record = deployed.record
    decoded = decode_request(await request.body(), request.headers.get(BINARY_HEADER))
    selected = select_outputs(decoded, record.signature)
    arrays, pointers = match_signature(decoded.inputs, record.signature)
    batch = record.signature.conform(arrays, pointers)
    outputs = await context(request).host.predict(deployed, batch)
    header: dict[str, Any] = {"model_name": record.name, "model_version": str(record.version)}
    if decoded.request_id is not None:
        header["id"] = decoded.request_id
    body, header_length = encode_response(
        header, [OutputTensor(name, outputs[name], binary) for name, binary in selected])
    if header_length is None:
        return JSONBytes(body)
    return Response(body, media_type="application/octet-stream",
                    headers={BINARY_HEADER: str(header_length)})


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
                pointer=f"/outputs/{index}/name")
    return [(o.name, default if o.binary is None else o.binary) for o in decoded.outputs]


def match_signature(inputs: tuple[InputTensor, ...],
                    signature: Signature) -> tuple[dict[str, np.ndarray], dict[str, str]]:
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
            raise MalformedRequestError(f"input {tensor.name!r} is sent twice",
                                        pointer=tensor.pointer("name"))
        array = tensor.array
        arrays[tensor.name] = array[:, 0] if array.ndim == 2 and array.shape[1] == 1 else array
    return arrays, {t.name: t.pointer() for t in inputs}


def _tensor_input(inputs: tuple[InputTensor, ...],
                  spec: TensorSpec) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """A tensor model takes one ``[N, features]`` tensor, under its own name or any other."""
    if len(inputs) != 1:
        raise InvalidInputError(f"this model takes one input tensor {spec.name!r} of shape "
                                f"{list(spec.shape)}, got {len(inputs)}", pointer="/inputs")
    tensor = inputs[0]
    if tensor.array.ndim != len(spec.shape):
        raise InvalidInputError(
            f"input {tensor.name!r} must have shape {list(spec.shape)} (-1: any), got "
            f"{list(tensor.array.shape)}", pointer=tensor.pointer("shape"))
    return {spec.name: tensor.array}, {spec.name: tensor.pointer()}


def _positional(tensor: InputTensor, signature: Signature) -> bool:
    """One ``[N, n_columns]`` tensor may stand for all-numeric columns, in signature order."""
    return (tensor.array.ndim == 2 and tensor.array.shape[1] == len(signature.inputs)
            and all(spec.dtype != STRING for spec in signature.inputs))
