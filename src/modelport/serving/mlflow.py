"""MLflow scoring server protocol (protocols.md §3), so MLflow clients can call modelport.

``/invocations`` answers for the default model (the only one served, or ``--default-model``);
``/models/{name}/invocations`` is modelport's extension for any served model. Bodies are JSON
(``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs``), CSV, or Parquet
when pyarrow is installed; decoding lives in :mod:`modelport.serving.mlflow_codec`. Errors
carry MLflow's ``error_code`` and ``message`` (added by :mod:`modelport.serving.problems`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from starlette.responses import PlainTextResponse, Response

import modelport
from modelport.errors import InvalidInputError, MalformedRequestError, NotFoundError
from modelport.runtimes.batch import Batch
from modelport.runtimes.signature import STRING, Signature
from modelport.serving.context import context
from modelport.serving.encoding import JSONBytes, dumps, jsonable, read_json_object
from modelport.serving.mlflow_codec import (
    BodyFormat,
    Decoded,
    body_format,
    decode_csv,
    decode_json,
    decode_parquet,
)
from modelport.serving.routes import HotRoutes

log = logging.getLogger("modelport.serving")
router = APIRouter(tags=["MLflow scoring"])
hot = HotRoutes("MLflow scoring")

_INVOCATIONS_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {
        "schema": {"type": "object", "description": "exactly one of dataframe_split, "
                   "dataframe_records, instances or inputs; optional params.output"},
        "example": {"dataframe_split": {"columns": ["a", "b", "c", "d"],
                                        "data": [[5.1, 3.5, 1.4, 0.2]]}}},
    "text/csv": {"schema": {"type": "string", "description": "a header row, then rows"}}}}}


@router.get("/ping")
@router.get("/health")
async def ping(request: Request) -> Response:
    """MLflow's health probe: 200 once the default model is loaded, 404 until then."""
    model = context(request).host.default()
    if model.current is None:
        reason = f": {model.last_error}" if model.last_error else " yet"
        raise NotFoundError(f"model {model.name!r} is not loaded{reason}")
    return Response("\n", media_type="application/json")


@router.get("/version")
async def version() -> PlainTextResponse:
    """The server version as raw text, where MLflow clients look for it."""
    return PlainTextResponse(modelport.__version__)


@hot.post("/invocations", summary="Predictions from the default model",
          body=_INVOCATIONS_BODY, query=("output",))
async def invocations(request: Request) -> Response:
    return await _invoke(request, context(request).host.default().name)


@hot.post("/models/{name}/invocations", summary="Predictions from a served model",
          body=_INVOCATIONS_BODY, query=("output",))
async def model_invocations(request: Request) -> Response:
    """Any served model: ``iris``, ``iris@production`` or ``iris/3``."""
    return await _invoke(request, request.path_params["name"])


async def _invoke(request: Request, name: str) -> Response:
    """Both invocation routes; the model is named to metrics before the body can fail."""
    output = request.query_params.get("output")
    host = context(request).host
    deployed = host.get(name)
    request.state.model, request.state.version = deployed.record.name, deployed.record.version
    signature = deployed.record.signature
    decoded = await _decode(request, signature)
    if decoded.ignored_params:
        log.warning("%s: ignoring params %s; the only one understood is 'output'",
                    deployed.record.address, ", ".join(decoded.ignored_params))
    chosen = signature.output_name(_output_name(output, decoded.output))
    outputs = await host.predict(deployed, _conform(signature, decoded))
    return JSONBytes(dumps({"predictions": jsonable(outputs[chosen])}))


async def _decode(request: Request, signature: Signature) -> Decoded:
    """JSON is parsed on the loop (orjson is fast); CSV and Parquet in a thread."""
    found = body_format(request.headers.get("content-type"))
    if found is BodyFormat.JSON:
        return decode_json(await read_json_object(request), signature)
    body = await request.body()
    decoder = decode_csv if found is BodyFormat.CSV else decode_parquet
    return await asyncio.to_thread(decoder, body, signature)


def _output_name(query: str | None, param: str | None) -> str | None:
    """``?output=`` (as in V1) or ``params.output``; naming two different outputs is an error."""
    if query is not None and param is not None and query != param:
        raise MalformedRequestError(f"?output={query} and params.output={param} disagree; "
                                    "name the output once", pointer="/params/output")
    return query or param


def _conform(signature: Signature, decoded: Decoded) -> Batch:
    """``Signature.conform``, with errors pointing at the first offending row when there is one."""
    try:
        return signature.conform(decoded.arrays,
                                 {name: place.path for name, place in decoded.places.items()})
    except InvalidInputError as exc:
        found = _first_bad_row(signature, decoded.arrays)
        if found is None:
            raise
        name, row = found
        raise type(exc)(f"{exc.detail} (row {row})",
                        pointer=decoded.places[name].row(row)) from exc


def _first_bad_row(signature: Signature, arrays: dict[str, np.ndarray]) -> tuple[str, int] | None:
    """The input and row of the first value refused; None unless the fault lies in a row.

    Runs on the error path only. Each input is checked alone, in signature order (the order
    ``conform`` checks them), and the first refused one is bisected over row prefixes.
    """
    if set(arrays) != set(signature.input_names()):
        return None
    for spec in signature.inputs:
        alone, array = Signature(signature.kind, (spec,)), arrays[spec.name]
        if _accepts(alone, spec.name, array):
            continue
        if array.ndim == 0 or len(array) == 0:
            return None
        if spec.dtype != STRING and _has_text(array):
            row = _first_non_number(array)
            return None if row is None else (spec.name, row)
        low, high = 1, len(array)  # the shortest refused prefix has a length in [low, high]
        while low < high:
            middle = (low + high) // 2
            if _accepts(alone, spec.name, array[:middle]):
                low = middle + 1
            else:
                high = middle
        return spec.name, low - 1
    return None


def _accepts(signature: Signature, name: str, array: np.ndarray) -> bool:
    try:
        signature.conform({name: array})
    except InvalidInputError:
        return False
    return True


def _has_text(array: np.ndarray) -> bool:
    """Text in a numeric input: numpy makes ``[3, "old"]`` all strings, and pandas does the same
    to a CSV column with one bad cell, so every row's prefix is refused and bisection can't help.
    """
    kind = array.dtype.kind
    return kind in "US" or (kind == "O" and any(isinstance(v, str) for v in array.ravel()))


def _first_non_number(array: np.ndarray) -> int | None:
    """The first row holding text that no JSON or CSV number could have become."""
    for index, row in enumerate(array.reshape(len(array), -1).tolist()):
        for value in row:
            try:
                float(value)
            except ValueError:
                return index
    return None
