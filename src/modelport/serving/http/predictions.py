"""Prediction log API under ``/api/predictions``: what the served models were asked and what
they answered, for the person on call and for scripts.

It needs the admin scope: logged inputs are customer data even with personal fields masked.
Pages continue with ``after_id`` (oldest first from there); without it the newest come first.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from modelport.monitoring.predictions import MAX_QUERY_ROWS, PredictionQuery, PredictionStore
from modelport.security.keys import Scope
from modelport.serving.http.access import requires
from modelport.serving.http.state import serving_state

router = APIRouter(prefix="/api", tags=["predictions"], dependencies=[requires(Scope.ADMIN)])


@router.get("/predictions")
async def list_predictions(
    request: Request,
    model: Annotated[str | None, Query(description="Only this model.")] = None,
    version: Annotated[int | None, Query(ge=1, description="Only this version.")] = None,
    deployment: Annotated[str | None, Query(description="Only this deployment.")] = None,
    request_id: Annotated[str | None, Query(description="Only this request.")] = None,
    since: Annotated[str | None, Query(description="From this time or age (1h, 7d).")] = None,
    until: Annotated[str | None, Query(description="Up to this time or age.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_QUERY_ROWS)] = 100,
    after_id: Annotated[
        int | None, Query(ge=0, description="Only entries after this id, oldest first.")
    ] = None,
) -> dict[str, Any]:
    """Logged predictions matching every filter given."""
    query = PredictionQuery.parsed(
        model=model,
        version=version,
        deployment=deployment,
        request_id=request_id,
        since=since,
        until=until,
        after_id=after_id,
        limit=limit,
    )
    store = PredictionStore(serving_state(request).registry.database)
    entries = await run_in_threadpool(store.query, query)
    return {"predictions": [e.to_dict() for e in entries]}
