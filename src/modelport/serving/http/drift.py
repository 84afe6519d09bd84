"""Drift API: a version's reference profile, and its drift over a window of the prediction
log (JSON, or the HTML report with a plot per feature).

Both need only the read scope: they hold distributions and statistics, not requests.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse

from modelport.durations import parse_duration
from modelport.errors import ReferenceNotFoundError
from modelport.monitoring.drift import drift_reports_of
from modelport.security.keys import Scope
from modelport.serving.http.access import requires
from modelport.serving.http.state import serving_state

router = APIRouter(prefix="/api", tags=["drift"], dependencies=[requires(Scope.READ)])


@router.get("/models/{name}/versions/{version}/reference")
async def get_reference(request: Request, name: str, version: int) -> dict[str, Any]:
    """The version's reference profile: per feature its kind, missing values and bins or
    categories with counts, and the predictions' distribution (not the stored sample)."""
    from modelport.monitoring import references  # scipy behind it: loaded on first use

    registry = serving_state(request).registry
    profile = await run_in_threadpool(references.load, registry, name, version)
    if profile is None:
        raise ReferenceNotFoundError(
            f"{name}/{version} has no reference profile; attach one with "
            f"`modelport reference set {name}/{version} FILE`"
        )
    return profile.to_dict()


@router.get("/drift", response_model=None)
async def get_drift(
    request: Request,
    model: Annotated[str, Query(description="iris, iris/3 or iris@production.")],
    window: Annotated[str, Query(description="How far back: 30m, 1h, 7d.")] = "1h",
    format: Annotated[Literal["json", "html"], Query(description="json or html.")] = "json",
) -> dict[str, Any] | HTMLResponse:
    """Drift of the version over the newest ``window`` of its logged traffic."""
    span = parse_duration(window, field="window")
    state = serving_state(request)
    record = await run_in_threadpool(state.registry.resolve, model)
    reports = drift_reports_of(state.settings, state.registry)
    result = await run_in_threadpool(reports.report, record.name, record.version, span)
    if format == "json":
        return result.to_dict()
    from modelport.monitoring.drift_html import Section, render

    title = f"Drift of {record.address} over the last {window}"
    sections = []
    if result.report is not None and result.reference is not None and result.current:
        current = result.current.columns
        sections = [Section(record.address, result.report, result.reference, current)]
    return HTMLResponse(render(title, sections, result.reason))
