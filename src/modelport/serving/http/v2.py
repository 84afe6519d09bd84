"""Open Inference Protocol V2 routes (docs/protocols.md, V2): health, metadata, infer.

Every model path works with and without ``/versions/<v>``; names arrive URL-decoded, so
``iris%40production`` is routed as ``iris@production``. Decoding and encoding, the binary
tensor extension included, are :mod:`modelport.codecs.v2`'s.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

import modelport
from modelport.codecs import v2 as codec
from modelport.errors import ModelNotReadyError
from modelport.inference import InferenceService, Target, Transport
from modelport.inference.router import version_number
from modelport.security.keys import Scope
from modelport.serving.http.access import requires
from modelport.serving.http.routes import HotRoutes, HttpAnswer, HttpCall
from modelport.serving.http.state import serving_state

METADATA = [requires(Scope.READ, public_ok=True)]
"""A model's metadata: a read key, or none for a public model."""
router = APIRouter(tags=["Open Inference Protocol V2"])
hot = HotRoutes("Open Inference Protocol V2", Transport.V2)

BINARY_HEADER = b"inference-header-content-length"

_INFER_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["inputs"],
                    "description": (
                        "Content-Type is optional. With the Inference-Header-Content-Length "
                        "header the body is this JSON followed by raw tensors (binary tensor "
                        "data extension)."
                    ),
                    "properties": {
                        "id": {"type": "string"},
                        "parameters": {"type": "object"},
                        "inputs": {"type": "array", "items": {"type": "object"}},
                        "outputs": {"type": "array", "items": {"type": "object"}},
                    },
                    "example": {
                        "id": "42",
                        "inputs": [
                            {
                                "name": "input",
                                "shape": [1, 4],
                                "datatype": "FP64",
                                "data": [5.1, 3.5, 1.4, 0.2],
                            }
                        ],
                        "outputs": [{"name": "probabilities"}],
                    },
                }
            }
        },
    }
}


@router.get("/v2", dependencies=[requires(Scope.READ)])
async def server_metadata() -> dict[str, Any]:
    """Server name, version, and the extensions clients may use (binary tensors)."""
    return {
        "name": "modelport",
        "version": modelport.__version__,
        "extensions": list(codec.EXTENSIONS),
    }


@router.get("/v2/health/live")
async def server_live() -> dict[str, bool]:
    """Liveness: the process answers."""
    return {"live": True}


@router.get("/v2/health/ready")
async def server_ready(request: Request) -> dict[str, bool]:
    """Readiness: every served model is loaded (503 otherwise, as clients only read status)."""
    if not serving_state(request).service.router.ready():
        raise ModelNotReadyError("not every served model is loaded yet")
    return {"ready": True}


@router.get("/v2/models/{name}", dependencies=METADATA)
async def model_metadata(request: Request, name: str) -> dict[str, Any]:
    """Inputs and outputs of the version the name routes to, from its signature."""
    return codec.metadata(_target(request, name, None).record)


@router.get("/v2/models/{name}/versions/{version}", dependencies=METADATA)
async def model_version_metadata(request: Request, name: str, version: str) -> dict[str, Any]:
    return codec.metadata(_target(request, name, version).record)


@router.get("/v2/models/{name}/ready", dependencies=METADATA)
async def model_ready(request: Request, name: str) -> dict[str, Any]:
    """200 when the model can serve now; 404 unknown, 503 still loading."""
    return {"name": _target(request, name, None).record.name, "ready": True}


@router.get(
    "/v2/models/{name}/versions/{version}/ready",
    dependencies=METADATA,
)
async def model_version_ready(request: Request, name: str, version: str) -> dict[str, Any]:
    return {"name": _target(request, name, version).record.name, "ready": True}


def _target(request: Request, name: str, version: str | None) -> Target:
    return serving_state(request).service.resolve(
        name, version_number(name, version), request.state.ctx
    )


@hot.post("/v2/models/{name}/infer", summary="Infer", body=_INFER_BODY)
@hot.post(
    "/v2/models/{name}/versions/{version}/infer", summary="Infer with a version", body=_INFER_BODY
)
async def infer(call: HttpCall, service: InferenceService) -> HttpAnswer:
    """Predict; JSON, or with ``Inference-Header-Content-Length`` JSON plus binary tensors."""
    name, body, header_length = call.params["name"], call.body, call.header(BINARY_HEADER)
    answer = await service.infer(
        call.ctx,
        name,
        version_number(name, call.params.get("version")),
        lambda signature: codec.decode_infer(body, header_length, signature),
        len(body),
    )
    content, json_length = codec.encode_infer(answer.target.record, answer.outputs, answer.extras)
    if json_length is None:
        return HttpAnswer(content)
    return HttpAnswer(
        content, "application/octet-stream", [(BINARY_HEADER, str(json_length).encode())]
    )
