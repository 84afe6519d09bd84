"""Management API under ``/api/``: models, versions, aliases, stages, upload of new versions.

Reads hang off ``reader`` (a ``read`` key); every route that changes the registry off ``deployer``
(a ``deploy`` key; with authentication off, only when ``allow_remote_admin`` is set). A trusted
upload needs an ``admin`` key, and is prepared in a child process, never in the server's own.
"""

from __future__ import annotations

import shutil
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelport.config import Settings
from modelport.errors import ForbiddenError, InvalidInputError
from modelport.registry import Stage, prepare_file
from modelport.registry.address import check_name
from modelport.registry.isolation import ChildLimits, prepare_isolated
from modelport.registry.scratch import scratch_folder
from modelport.runtimes.signature import infer_signature
from modelport.security.keys import Scope
from modelport.serving.http.access import actor_of, changes, requires
from modelport.serving.http.state import serving_state

router = APIRouter(prefix="/api", tags=["registry"])
reader = APIRouter(dependencies=[requires(Scope.READ)])
deployer = APIRouter(dependencies=changes(Scope.DEPLOY))


class AliasBody(BaseModel):
    version: int = Field(ge=1, description="Version the alias should point at.")


class StageBody(BaseModel):
    stage: Stage = Field(description="New lifecycle state of the version.")


@reader.get("/models")
async def list_models(request: Request) -> dict[str, Any]:
    models = await run_in_threadpool(serving_state(request).registry.list_models)
    return {"models": [m.to_dict() for m in models]}


@reader.get("/models/{name}")
async def get_model(request: Request, name: str) -> dict[str, Any]:
    model = await run_in_threadpool(serving_state(request).registry.get_model, name)
    return model.to_dict()


@reader.get("/models/{name}/versions")
async def list_versions(request: Request, name: str) -> dict[str, Any]:
    versions = await run_in_threadpool(serving_state(request).registry.list_versions, name)
    return {"versions": [v.to_dict() for v in versions]}


@reader.get("/models/{name}/versions/{version}")
async def get_version(request: Request, name: str, version: int) -> dict[str, Any]:
    record = await run_in_threadpool(serving_state(request).registry.get_version, name, version)
    return record.to_dict()


@deployer.post("/models/{name}/versions", status_code=201)
async def upload_version(
    request: Request,
    name: str,
    artifact: Annotated[
        UploadFile,
        File(
            description="Model file: .skops, .onnx, .txt, .ubj, "
            ".json; .joblib, .pkl, .pickle with trusted=true"
        ),
    ],
    sample: Annotated[
        str,
        Form(
            description="Sample input as JSON: a list of rows, or "
            "{column: [values]} for named columns."
        ),
    ],
    trusted: Annotated[
        bool,
        Form(
            description="Adopt a file whose loading runs its code (pickle, joblib, skops "
            "types not trusted by default): admin keys only (403 otherwise); prepared in a "
            "child process with resource limits."
        ),
    ] = False,
    description: Annotated[str, Form()] = "",
    metadata: Annotated[
        str, Form(description="JSON object with optional tags, params, metrics, lineage.")
    ] = "{}",
) -> dict[str, Any]:
    """Register an uploaded model file as the next version of ``name``."""
    check_name(name)  # before any part of the upload is looked at
    if trusted:
        _check_trust(request)
    sample_data = _sample(sample)
    extra = _metadata(_json_field(metadata, "metadata"))
    filename = _artifact_name(artifact.filename)
    state = serving_state(request)
    registry, settings = state.registry, state.settings
    actor = actor_of(request)

    def register() -> dict[str, Any]:
        # the upload too waits in the home's scratch folder, where `modelport gc` finds it
        with scratch_folder(registry.scratch_dir) as scratch:
            path = scratch / filename
            with path.open("wb") as copy:
                shutil.copyfileobj(artifact.file, copy, _CHUNK)  # never whole in memory
            preparing = (
                prepare_isolated(
                    path,
                    sample_data,
                    _child_limits(settings),
                    name=name,
                    scratch=registry.scratch_dir,
                )
                if trusted
                else prepare_file(path, sample_data, name=name, scratch=registry.scratch_dir)
            )
            with preparing as prepared:
                record = registry.register(
                    name, prepared, description=description, actor=actor, **extra
                )
        return record.to_dict()

    return await run_in_threadpool(register)


@deployer.post("/models/{name}/versions/{version}/stage")
async def transition_stage(
    request: Request, name: str, version: int, body: StageBody
) -> dict[str, Any]:
    registry = serving_state(request).registry
    record = await run_in_threadpool(
        registry.transition_stage, name, version, body.stage, actor=actor_of(request)
    )
    return record.to_dict()


@reader.get("/models/{name}/versions/{version}/stages")
async def stage_history(request: Request, name: str, version: int) -> dict[str, Any]:
    history = await run_in_threadpool(serving_state(request).registry.stage_history, name, version)
    return {"transitions": [t.to_dict() for t in history]}


@reader.get("/models/{name}/aliases/{alias}")
async def get_alias(request: Request, name: str, alias: str) -> dict[str, Any]:
    record = await run_in_threadpool(serving_state(request).registry.resolve, f"{name}@{alias}")
    return {"model": name, "alias": alias, "version": record.version}


@deployer.put("/models/{name}/aliases/{alias}")
async def set_alias(request: Request, name: str, alias: str, body: AliasBody) -> dict[str, Any]:
    """Move an alias; a server following it loads the new version, then switches."""
    state = serving_state(request)
    await run_in_threadpool(
        state.registry.set_alias, name, alias, body.version, actor=actor_of(request)
    )
    state.follower.wake()
    return {"model": name, "alias": alias, "version": body.version}


@deployer.delete("/models/{name}/aliases/{alias}", status_code=204)
async def delete_alias(request: Request, name: str, alias: str) -> Response:
    state = serving_state(request)
    await run_in_threadpool(state.registry.delete_alias, name, alias, actor=actor_of(request))
    state.follower.wake()
    return Response(status_code=204)


@reader.get("/models/{name}/aliases")
async def alias_history(request: Request, name: str) -> dict[str, Any]:
    registry = serving_state(request).registry
    model = await run_in_threadpool(registry.get_model, name)
    events = await run_in_threadpool(registry.alias_history, name)
    return {"aliases": dict(model.aliases), "history": [e.to_dict() for e in events]}


_CHUNK = 1024 * 1024


def _check_trust(request: Request) -> None:
    """Trust is an admin act: only an authenticated admin key may upload a file whose loading
    runs its code; without keys, nobody over HTTP (the CLI on the registry remains)."""
    access = serving_state(request).access
    key = access.authenticator.key(request.state.ctx.caller) if access.required else None
    if key is None:
        raise ForbiddenError(
            "trusted uploads need an admin API key, and this server does not require keys: "
            "turn on MODELPORT_AUTH, or register the file with `modelport register --trusted`"
        )
    if not key.scope.grants(Scope.ADMIN):
        raise ForbiddenError(
            f"trusted uploads need an admin API key; API key {key.id} has scope "
            f"{key.scope.value} (loading a pickle runs its code)"
        )


def _child_limits(settings: Settings) -> ChildLimits:
    return ChildLimits(
        memory_bytes=settings.trusted_memory_bytes,
        cpu_s=settings.trusted_cpu_s,
        file_bytes=settings.max_upload_bytes,
        timeout_s=settings.trusted_timeout_s,
    )


def _json_field(text: str, field: str) -> Any:
    """Parsed with orjson, whose nesting limit turns a hostile document into a 422 where
    Python's json would exhaust the stack (RecursionError, a 500)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"{field} is not valid JSON: {exc}", pointer=f"/{field}") from exc


def _sample(text: str) -> Any:
    """The ``sample`` form field; its problems are found before the upload is read, and
    located under ``/sample``."""
    sample = _json_field(text, "sample")
    try:
        infer_signature(sample)
    except InvalidInputError as exc:
        raise type(exc)(exc.detail, pointer="/sample" + (exc.pointer or "")) from exc
    return sample


_METADATA_KEYS = ("tags", "params", "metrics", "lineage")
_JSON_TYPES = {
    str: "a string",
    list: "an array",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def _metadata(extra: Any) -> dict[str, dict[str, Any]]:
    """The ``metadata`` form field: an object of objects, checked before the upload is read."""
    if not isinstance(extra, dict):
        raise InvalidInputError("metadata must be a JSON object", pointer="/metadata")
    unknown = set(extra) - set(_METADATA_KEYS)
    if unknown:
        raise InvalidInputError(
            f"unknown metadata keys: {', '.join(sorted(unknown))}; "
            f"expected {', '.join(_METADATA_KEYS)}",
            pointer="/metadata",
        )
    for key, value in extra.items():
        if not isinstance(value, dict):
            got = _JSON_TYPES.get(type(value), type(value).__name__)
            raise InvalidInputError(
                f"metadata {key} must be a JSON object, got {got}", pointer=f"/metadata/{key}"
            )
    return extra


_MAX_FILENAME = 200  # well inside every file system's 255-byte limit


def _artifact_name(filename: str | None) -> str:
    """The uploaded file's own name, without any folder a client put in front of it; the
    suffix tells which runtime reads the file."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    if name in ("", ".", "..") or len(name) > _MAX_FILENAME or not name.isprintable():
        raise InvalidInputError(
            f"the artifact needs a file name such as model.skops, got {filename!r}",
            pointer="/artifact",
        )
    return name


# last: including copies the routes defined so far
router.include_router(reader)
router.include_router(deployer)
