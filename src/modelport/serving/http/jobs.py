"""Asynchronous jobs over HTTP: ``POST /v1/models/{name}/jobs`` answers 202 with the job's id
and ``Location`` at once; ``GET /v1/jobs/{id}`` tells its state, progress and answer;
``DELETE`` cancels it.

A job is checked as fully as a synchronous request before it is accepted (key, budget, model,
body against the signature), so a job that could never succeed is a 4xx now rather than a
failed job later. With API keys on, a job is visible to the key that submitted it and to
admin keys only; to anyone else it does not exist.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from modelport.errors import ConflictError, JobNotFoundError
from modelport.inference.router import version_number
from modelport.jobs import Job, JobFormat, JobKind, JobRequest, JobState, NewJob
from modelport.jobs.store import MAX_LISTED, RESULT
from modelport.security.keys import Scope
from modelport.serving.http.access import requires
from modelport.serving.http.state import ServingState, serving_state

router = APIRouter(tags=["jobs"])

INLINE_RESULT_BYTES = 1024 * 1024
"""Answers up to this size are shown inside the job's status; larger ones only at its
``/result`` link."""

_JOB_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "Any body the model's predict routes take: KServe V1, Open Inference "
        "Protocol V2, or MLflow /invocations (JSON, CSV, Parquet).",
        "content": {
            "application/json": {
                "schema": {"type": "object"},
                "example": {"instances": [[5.1, 3.5, 1.4, 0.2]]},
            },
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"description": "Accepted: the job is queued; poll its Location."}
}
FormatQuery = Annotated[
    JobFormat | None,
    Query(description="The body's protocol; told from the body when not given."),
]
OutputQuery = Annotated[
    str | None, Query(description="The output to answer with (V1 and MLflow bodies).")
]


@router.post(
    "/v1/models/{name}/jobs",
    status_code=202,
    dependencies=[requires(Scope.PREDICT)],
    openapi_extra=_JOB_BODY,
    responses=_ACCEPTED,
)
async def submit(
    request: Request, name: str, format: FormatQuery = None, output: OutputQuery = None
) -> JSONResponse:
    """Queue a prediction of any size; its answer is the predict route's."""
    return await _submit(request, name, format, output)


@router.post(
    "/v1/models/{name}/versions/{version}/jobs",
    status_code=202,
    dependencies=[requires(Scope.PREDICT)],
    openapi_extra=_JOB_BODY,
    responses=_ACCEPTED,
)
async def submit_version(
    request: Request,
    name: str,
    version: str,
    format: FormatQuery = None,
    output: OutputQuery = None,
) -> JSONResponse:
    """Queue a prediction by one version of a model."""
    number = version_number(name, version)
    return await _submit(request, f"{name}/{number}", format, output)


async def _submit(
    request: Request, reference: str, format: JobFormat | None, output: str | None
) -> JSONResponse:
    state = serving_state(request)
    ctx = request.state.ctx
    body = await request.body()
    job_request = JobRequest.submitted(
        body,
        request.headers.get("content-type"),
        format=format,
        output=output,
        header_length=request.headers.get("inference-header-content-length"),
    )
    await state.service.check(ctx, reference, None, job_request.decoder(), len(body))
    state.dispatch.admit(ctx.deployment)
    new = NewJob(
        JobKind.PREDICT,
        reference,
        ctx.deployment or ctx.model,
        job_request.format.value,
        job_request.options(),
        ctx.caller,
        ctx.request_id,
        body,
    )
    job = await run_in_threadpool(state.jobs.submit, new)
    await state.dispatch.queued(job)
    return JSONResponse(job.to_dict(), status_code=202, headers={"Location": link(job)})


@router.get("/v1/jobs", dependencies=[requires(Scope.READ)])
async def list_jobs(
    request: Request,
    state: Annotated[JobState | None, Query(description="Only jobs in this state.")] = None,
    model: Annotated[str | None, Query(description="Only jobs for this model.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 100,
) -> dict[str, Any]:
    """Jobs, newest first: a key's own, or every job for an admin key."""
    serving = serving_state(request)
    caller = None if _sees_all(request, serving) else request.state.ctx.caller
    jobs = await run_in_threadpool(
        lambda: serving.jobs.jobs(state=state, name=model, caller=caller, limit=limit)
    )
    return {"jobs": [shown(job) for job in jobs]}


@router.get("/v1/jobs/{job_id}", dependencies=[requires(Scope.READ)])
async def job_status(request: Request, job_id: str) -> dict[str, Any]:
    """State, progress, and the answer (inline up to 1 MiB) or the error."""
    serving = serving_state(request)
    job = await _visible(request, serving, job_id)
    status = shown(job)
    if job.result_size is not None and job.result_size <= INLINE_RESULT_BYTES:
        body = await run_in_threadpool(serving.jobs.payload, job.id, RESULT)
        status["result"]["body"] = orjson.loads(body)
    return status


@router.get(
    "/v1/jobs/{job_id}/result",
    dependencies=[requires(Scope.READ)],
    responses={200: {"content": {"application/json": {}}}},
)
async def job_result(request: Request, job_id: str) -> Response:
    """The answer of a job that succeeded, exactly as the predict route would have sent it."""
    serving = serving_state(request)
    job = await _visible(request, serving, job_id)
    if job.state is not JobState.SUCCEEDED or job.result_type is None:
        raise ConflictError(f"job {job.id} has no answer: it is {job.state.value}")
    body = await run_in_threadpool(serving.jobs.payload, job.id, RESULT)
    return Response(body, media_type=job.result_type)


@router.delete("/v1/jobs/{job_id}", status_code=202, dependencies=[requires(Scope.PREDICT)])
async def cancel_job(request: Request, job_id: str) -> dict[str, Any]:
    """Cancel: a queued job at once, a running one at its next piece (409 once finished)."""
    serving = serving_state(request)
    await _visible(request, serving, job_id)
    ttl = timedelta(seconds=serving.settings.job_result_ttl_s)
    job = await run_in_threadpool(lambda: serving.jobs.cancel(job_id, ttl=ttl))
    return shown(job)


async def _visible(request: Request, serving: ServingState, job_id: str) -> Job:
    job = await run_in_threadpool(serving.jobs.get, job_id)
    if not _sees_all(request, serving) and job.caller != request.state.ctx.caller:
        raise JobNotFoundError(f"job {job_id!r} not found (finished jobs expire)")
    return job


def _sees_all(request: Request, serving: ServingState) -> bool:
    """Without keys everyone sees every job; with keys, admin keys do."""
    if not serving.access.required:
        return True
    key = serving.access.authenticator.key(request.state.ctx.caller)
    return key is not None and key.scope.grants(Scope.ADMIN)


def shown(job: Job) -> dict[str, Any]:
    """The job as the API shows it: with the link to its answer once there is one."""
    status = job.to_dict()
    if status["result"] is not None:
        status["result"]["url"] = f"{link(job)}/result"
    return status


def link(job: Job) -> str:
    return f"/v1/jobs/{job.id}"
