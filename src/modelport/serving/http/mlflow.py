"""MLflow scoring server routes (docs/protocols.md, MLflow), so MLflow clients can call modelport.

``/invocations`` answers for the default model (the only one served, or ``--default-model``);
``/models/{name}/invocations`` is modelport's extension for any served model. Bodies are JSON
(``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs``), CSV, or Parquet
when pyarrow is installed; :mod:`modelport.codecs.mlflow` decodes them. Errors carry MLflow's
``error_code`` and ``message`` (added by the one renderer).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import PlainTextResponse, Response

import modelport
from modelport.codecs import mlflow as codec
from modelport.codecs import v1
from modelport.errors import NotFoundError
from modelport.inference import InferenceService, Transport
from modelport.serving.http.routes import HotRoutes, HttpAnswer, HttpCall
from modelport.serving.http.state import serving_state

log = logging.getLogger("modelport.serving")
router = APIRouter(tags=["MLflow scoring"])
hot = HotRoutes("MLflow scoring", Transport.MLFLOW)

_INVOCATIONS_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "exactly one of dataframe_split, "
                    "dataframe_records, instances or inputs; optional params.output",
                },
                "example": {
                    "dataframe_split": {
                        "columns": ["a", "b", "c", "d"],
                        "data": [[5.1, 3.5, 1.4, 0.2]],
                    }
                },
            },
            "text/csv": {"schema": {"type": "string", "description": "a header row, then rows"}},
        },
    }
}


# MLflow's scoring server answers a newline labelled application/json; the document says so
# rather than promise a JSON body (response_class=Response declares no content)
_PROBE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The default model is loaded; the body is a newline, as MLflow's"},
    404: {"description": "The default model is not loaded (problem+json)"},
}


@router.get("/ping", response_class=Response, responses=_PROBE_RESPONSES)
@router.get("/health", response_class=Response, responses=_PROBE_RESPONSES)
async def ping(request: Request) -> Response:
    """MLflow's health probe: 200 once the default model is loaded, 404 until then."""
    problem = serving_state(request).service.router.default_problem()
    if problem is not None:
        raise NotFoundError(problem)
    return Response("\n", media_type="application/json")


@router.get("/version", response_class=PlainTextResponse)
async def version() -> PlainTextResponse:
    """The server version as raw text, where MLflow clients look for it."""
    return PlainTextResponse(modelport.__version__)


@hot.post(
    "/invocations",
    summary="Predictions from the default model",
    body=_INVOCATIONS_BODY,
    query=("output",),
)
async def invocations(call: HttpCall, service: InferenceService) -> HttpAnswer:
    return await _invoke(call, service, None)


@hot.post(
    "/models/{name}/invocations",
    summary="Predictions from a served model",
    body=_INVOCATIONS_BODY,
    query=("output",),
)
async def model_invocations(call: HttpCall, service: InferenceService) -> HttpAnswer:
    """Any served model: ``iris``, ``iris@production`` or ``iris/3``."""
    return await _invoke(call, service, call.params["name"])


async def _invoke(call: HttpCall, service: InferenceService, name: str | None) -> HttpAnswer:
    body, content_type, output = call.body, call.header(b"content-type"), call.query.get("output")
    answer = await service.infer(
        call.ctx,
        name,
        None,
        lambda signature: codec.decode_invocation(body, content_type, signature, output),
        len(body),
    )
    if answer.extras.ignored_params:
        log.warning(
            "%s: ignoring params %s; the only one understood is 'output'",
            answer.target.record.address,
            ", ".join(answer.extras.ignored_params),
        )
    return HttpAnswer(v1.encode_predictions(answer.outputs, answer.extras.output))
