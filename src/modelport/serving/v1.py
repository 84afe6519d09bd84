"""KServe V1 / TensorFlow-Serving predict protocol (protocols.md §2).

``instances`` (rows) or ``inputs`` (columns), never both. Rows may be positional lists (mapped
onto the signature in order) or objects keyed by input name. The answer is always
``{"predictions": [...]}``: the first output by default (label / prediction), or the one named
by ``?output=`` (e.g. ``probabilities``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from starlette.responses import Response

from modelport.errors import InvalidInputError, MalformedRequestError
from modelport.runtimes.signature import Signature, SignatureKind
from modelport.serving.context import context
from modelport.serving.encoding import (
    JsonBody,
    JSONBytes,
    as_array,
    dumps,
    jsonable,
    read_json_object,
)
from modelport.serving.routes import HotRoutes, path_version

router = APIRouter(tags=["KServe V1"])
hot = HotRoutes("KServe V1")

_PREDICT_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {
    "type": "object",
    "properties": {"instances": {"type": "array", "description": "rows"},
                   "inputs": {"description": "columns: a nested list or {name: column}"}},
    "example": {"instances": [[5.1, 3.5, 1.4, 0.2]]}}}}}}


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, list[str]]:
    return {"models": list(context(request).host.models)}


@router.get("/v1/models/{name}")
async def model_ready(request: Request, name: str) -> dict[str, Any]:
    deployed = context(request).host.get(name)
    return {"name": deployed.record.name, "ready": True}


@hot.post("/v1/models/{name}:predict", summary="Predict", body=_PREDICT_BODY,
          query=("output",))
@hot.post("/v1/models/{name}/versions/{version}:predict", summary="Predict with a version",
          body=_PREDICT_BODY, query=("output",))
async def predict(request: Request) -> Response:
    name = request.path_params["name"]
    return await _predict(request, name, path_version(request, name))


@hot.post("/v1/models/{name}/labels/{alias}:predict", summary="Predict with an alias",
          body=_PREDICT_BODY, query=("output",))
async def predict_label(request: Request) -> Response:
    params = request.path_params
    return await _predict(request, f"{params['name']}@{params['alias']}", None)


async def _predict(request: Request, name: str, version: int | None) -> Response:
    output = request.query_params.get("output")
    host = context(request).host
    deployed = host.get(name, version)
    request.state.model, request.state.version = deployed.record.name, deployed.record.version
    signature = deployed.record.signature
    chosen = signature.output_name(output)
    arrays, pointers = decode(await read_json_object(request), signature)
    batch = signature.conform(arrays, pointers)
    outputs = await host.predict(deployed, batch)
    return JSONBytes(dumps({"predictions": jsonable(outputs[chosen])}))


def decode(body: JsonBody,
           signature: Signature) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``instances`` or ``inputs`` as ``input name -> array``, plus the field each came from."""
    payload, check = body.payload, body.has_booleans
    has_rows, has_columns = "instances" in payload, "inputs" in payload
    if has_rows == has_columns:
        raise MalformedRequestError("send exactly one of 'instances' (rows) or 'inputs' "
                                    "(columns)", pointer="/instances")
    key = "instances" if has_rows else "inputs"
    value, pointer = payload[key], f"/{key}"
    if isinstance(value, dict) and key == "inputs":
        pointers = {k: f"{pointer}/{k}" for k in value}
        return {k: as_array(v, pointers[k], check_booleans=check)
                for k, v in value.items()}, pointers
    if not isinstance(value, list) or not value:
        raise MalformedRequestError(f"'{key}' must be a non-empty list", pointer=pointer)
    if all(isinstance(row, dict) for row in value):
        arrays = rows_to_columns(value, pointer, check)
    else:
        arrays = positional(value, signature, pointer, check)
    return arrays, dict.fromkeys(arrays, pointer)


def rows_to_columns(rows: list[dict[str, Any]], pointer: str,
                    check_booleans: bool = False) -> dict[str, np.ndarray]:
    """``[{"a": 1, "b": "x"}, ...]`` as columns; every row must carry the same keys."""
    names = list(rows[0])
    for index, row in enumerate(rows):
        if list(row) != names and set(row) != set(names):
            raise MalformedRequestError(f"row {index} has keys {sorted(row)}, row 0 has "
                                        f"{sorted(names)}", pointer=f"{pointer}/{index}")
    return {n: as_array([row[n] for row in rows], f"{pointer}/0/{n}",
                        check_booleans=check_booleans) for n in names}


def positional(value: list[Any], signature: Signature, pointer: str,
               check_booleans: bool = False) -> dict[str, np.ndarray]:
    """Unnamed rows: the tensor input itself, or columns taken in signature order.

    Mixed-type rows are transposed as Python lists, so ``[34, "paris"]`` keeps its number a
    number (numpy would turn the whole row into strings).
    """
    if signature.kind is SignatureKind.TENSOR:
        return {signature.inputs[0].name: as_array(value, pointer,
                                                   check_booleans=check_booleans)}
    rows = value if all(isinstance(row, list) for row in value) else [value]
    width = len(signature.inputs)
    for index, row in enumerate(rows):
        if len(row) != width:
            raise InvalidInputError(
                f"each row must have {width} values ({', '.join(signature.input_names())}), "
                f"row {index} has {len(row)}", pointer=f"{pointer}/{index}")
    columns = zip(*rows, strict=True)
    return {spec.name: as_array(list(column), f"{pointer}/0/{i}",
                                check_booleans=check_booleans)
            for i, (spec, column) in enumerate(zip(signature.inputs, columns, strict=True))}
