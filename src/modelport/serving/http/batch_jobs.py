"""Batch runs as jobs: ``POST /v1/models/{name}/batch-jobs`` with where to read and write;
the job is then polled, cancelled and answered like any other (``/v1/jobs/{id}``).

Reading and writing files is the server's own doing, so it is confined to
``MODELPORT_BATCH_ROOTS`` and needs the ``deploy`` scope.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from modelport.jobs import JobKind, NewJob
from modelport.jobs.batch.roots import check_within
from modelport.security.keys import Scope
from modelport.serving.http.access import requires
from modelport.serving.http.jobs import link, shown
from modelport.serving.http.state import serving_state

router = APIRouter(tags=["jobs"])


class BatchJobBody(BaseModel):
    """What ``modelport batch`` takes on the command line."""

    model_config = ConfigDict(extra="forbid")

    input: str = Field(
        min_length=1,
        description="A .parquet or .csv file, or a folder of them (local or s3://…).",
        examples=["s3://scoring/in/2026-12-06"],
    )
    output: str = Field(
        min_length=1,
        description="Folder for part files, _manifest.json and _SUCCESS.",
        examples=["s3://scoring/out/2026-12-06"],
    )
    passthrough: list[str] = Field([], description="Input columns copied beside the outputs.")
    outputs: list[str] = Field([], description="Model outputs written; none named: all.")
    format: Literal["parquet", "csv"] = Field("parquet", description="Output files.")
    chunk_rows: int = Field(
        1024, ge=1, le=1_000_000, description="Rows sent to the model at a time."
    )
    overwrite: bool = Field(False, description="Replace another run's files in the folder.")


@router.post(
    "/v1/models/{name}/batch-jobs",
    status_code=202,
    dependencies=[requires(Scope.DEPLOY)],
    responses={202: {"description": "Accepted: the run is queued; poll its Location."}},
)
async def submit_batch(request: Request, name: str, body: BatchJobBody) -> JSONResponse:
    """Queue a batch run with the version this model answers with when it starts; its answer
    is the run's summary (rows, parts, seconds)."""
    state = serving_state(request)
    ctx = request.state.ctx
    check_within(state.settings.batch_roots, body.input, "/input")
    check_within(state.settings.batch_roots, body.output, "/output")
    state.service.resolve(name, None, ctx)  # 404 or 503 now, not a failed job later
    state.dispatch.admit(ctx.deployment)
    new = NewJob(
        JobKind.BATCH,
        name,
        ctx.deployment or ctx.model,
        body.format,
        body.model_dump(),
        ctx.caller,
        ctx.request_id,
        b"",
    )
    job = await run_in_threadpool(state.jobs.submit, new)
    await state.dispatch.queued(job)
    return JSONResponse(shown(job), status_code=202, headers={"Location": link(job)})
