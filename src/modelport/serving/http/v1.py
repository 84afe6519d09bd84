"""KServe V1 / TensorFlow-Serving routes (docs/protocols.md, V1): decode, infer, encode."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from modelport.codecs import v1 as codec
from modelport.inference import InferenceService, Transport
from modelport.inference.router import version_number
from modelport.security.keys import Scope
from modelport.serving.http.access import requires
from modelport.serving.http.routes import HotRoutes, HttpAnswer, HttpCall
from modelport.serving.http.state import serving_state

METADATA = [requires(Scope.READ, public_ok=True)]
"""A model's metadata: a read key, or none for a public model."""
router = APIRouter(tags=["KServe V1"])
hot = HotRoutes("KServe V1", Transport.V1)

_PREDICT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "instances": {"type": "array", "description": "rows"},
                        "inputs": {"description": "columns: a nested list or {name: column}"},
                    },
                    "example": {"instances": [[5.1, 3.5, 1.4, 0.2]]},
                }
            }
        },
    }
}


@router.get("/v1/models", dependencies=[requires(Scope.READ)])
async def list_models(request: Request) -> dict[str, list[str]]:
    router = serving_state(request).service.router
    return {"models": [*router.routes, *router.endpoints]}


@router.get("/v1/models/{name}", dependencies=METADATA)
async def model_ready(request: Request, name: str) -> dict[str, Any]:
    ctx = request.state.ctx
    target = serving_state(request).service.resolve(name, None, ctx)
    return {"name": target.record.name, "ready": True}


@hot.post("/v1/models/{name}:predict", summary="Predict", body=_PREDICT_BODY, query=("output",))
@hot.post(
    "/v1/models/{name}/versions/{version}:predict",
    summary="Predict with a version",
    body=_PREDICT_BODY,
    query=("output",),
)
async def predict(call: HttpCall, service: InferenceService) -> HttpAnswer:
    name = call.params["name"]
    return await _predict(call, service, name, version_number(name, call.params.get("version")))


@hot.post(
    "/v1/models/{name}/labels/{alias}:predict",
    summary="Predict with an alias",
    body=_PREDICT_BODY,
    query=("output",),
)
async def predict_label(call: HttpCall, service: InferenceService) -> HttpAnswer:
    return await _predict(call, service, f"{call.params['name']}@{call.params['alias']}", None)


async def _predict(
    call: HttpCall, service: InferenceService, name: str, version: int | None
) -> HttpAnswer:
    output, body = call.query.get("output"), call.body
    answer = await service.infer(
        call.ctx,
        name,
        version,
        lambda signature: codec.decode_predict(body, signature, output),
        len(body),
    )
    return HttpAnswer(codec.encode_predictions(answer.outputs, answer.extras))
