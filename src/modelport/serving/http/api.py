"""Management API under ``/api/``: models, versions, aliases, stages, upload of new versions."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelport.errors import InvalidInputError
from modelport.registry import Stage, stage_file
from modelport.serving.http.state import serving_state

router = APIRouter(prefix="/api", tags=["registry"])


class AliasBody(BaseModel):
    version: int = Field(ge=1, description="Version the alias should point at.")


class StageBody(BaseModel):
    stage: Stage = Field(description="New lifecycle state of the version.")


@router.get("/models")
async def list_models(request: Request) -> dict[str, Any]:
    models = await run_in_threadpool(serving_state(request).registry.list_models)
    return {"models": [m.to_dict() for m in models]}


@router.get("/models/{name}")
async def get_model(request: Request, name: str) -> dict[str, Any]:
    model = await run_in_threadpool(serving_state(request).registry.get_model, name)
    return model.to_dict()


@router.get("/models/{name}/versions")
async def list_versions(request: Request, name: str) -> dict[str, Any]:
    versions = await run_in_threadpool(serving_state(request).registry.list_versions, name)
    return {"versions": [v.to_dict() for v in versions]}


@router.get("/models/{name}/versions/{version}")
async def get_version(request: Request, name: str, version: int) -> dict[str, Any]:
    record = await run_in_threadpool(serving_state(request).registry.get_version, name, version)
    return record.to_dict()


@router.post("/models/{name}/versions", status_code=201)
async def upload_version(
    request: Request, name: str,
    artifact: Annotated[UploadFile, File(description="Model file: .skops, .onnx, .txt, .ubj, "
                                                     ".joblib (trusted only) ...")],
    sample: Annotated[str, Form(description="Sample input as JSON: a list of rows, or "
                                            "{column: [values]} for named columns.")],
    trusted: Annotated[bool, Form(description="Allow pickle / unreviewed types.")] = False,
    description: Annotated[str, Form()] = "",
    metadata: Annotated[str, Form(description="JSON object with optional tags, params, "
                                              "metrics, lineage.")] = "{}",
) -> dict[str, Any]:
    """Register an uploaded model file as the next version of ``name``."""
    sample_data = _json_field(sample, "sample")
    extra = _json_field(metadata, "metadata")
    if not isinstance(extra, dict):
        raise InvalidInputError("metadata must be a JSON object", pointer="/metadata")
    unknown = set(extra) - {"tags", "params", "metrics", "lineage"}
    if unknown:
        raise InvalidInputError(f"unknown metadata keys: {', '.join(sorted(unknown))}",
                                pointer="/metadata")
    data = await artifact.read()
    registry = serving_state(request).registry

    def register() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="modelport-upload-") as scratch:
            path = Path(scratch) / Path(artifact.filename or "model").name
            path.write_bytes(data)
            with stage_file(path, sample_data, trusted=trusted) as staged:
                record = registry.register(name, staged, description=description, **extra)
        return record.to_dict()

    return await run_in_threadpool(register)


@router.post("/models/{name}/versions/{version}/stage")
async def transition_stage(request: Request, name: str, version: int,
                           body: StageBody) -> dict[str, Any]:
    registry = serving_state(request).registry
    record = await run_in_threadpool(registry.transition_stage, name, version, body.stage)
    return record.to_dict()


@router.get("/models/{name}/versions/{version}/stages")
async def stage_history(request: Request, name: str, version: int) -> dict[str, Any]:
    history = await run_in_threadpool(serving_state(request).registry.stage_history, name, version)
    return {"transitions": [t.to_dict() for t in history]}


@router.get("/models/{name}/aliases/{alias}")
async def get_alias(request: Request, name: str, alias: str) -> dict[str, Any]:
    record = await run_in_threadpool(serving_state(request).registry.resolve, f"{name}@{alias}")
    return {"model": name, "alias": alias, "version": record.version}


@router.put("/models/{name}/aliases/{alias}")
async def set_alias(request: Request, name: str, alias: str, body: AliasBody) -> dict[str, Any]:
    """Move an alias; a server following it loads the new version, then switches."""
    state = serving_state(request)
    await run_in_threadpool(state.registry.set_alias, name, alias, body.version)
    state.follower.wake()
    return {"model": name, "alias": alias, "version": body.version}


@router.delete("/models/{name}/aliases/{alias}", status_code=204)
async def delete_alias(request: Request, name: str, alias: str) -> Response:
    state = serving_state(request)
    await run_in_threadpool(state.registry.delete_alias, name, alias)
    state.follower.wake()
    return Response(status_code=204)


@router.get("/models/{name}/aliases")
async def alias_history(request: Request, name: str) -> dict[str, Any]:
    registry = serving_state(request).registry
    model = await run_in_threadpool(registry.get_model, name)
    events = await run_in_threadpool(registry.alias_history, name)
    return {"aliases": dict(model.aliases), "history": [e.to_dict() for e in events]}


def _json_field(text: str, field: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{field} is not valid JSON: {exc}", pointer=f"/{field}") from exc
