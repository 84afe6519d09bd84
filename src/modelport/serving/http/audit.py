"""Audit API under ``/api/audit``: who changed what in the registry, and whether the log
is intact.

Times are ISO 8601 (UTC unless they say otherwise) or ages such as ``24h``; pages continue
with ``after_id``, the ``next_after_id`` of the previous page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from modelport.durations import parse_instant
from modelport.registry.audit import MAX_PAGE
from modelport.security.keys import Scope
from modelport.serving.http.access import requires
from modelport.serving.http.state import serving_state

router = APIRouter(prefix="/api", tags=["audit"], dependencies=[requires(Scope.ADMIN)])


@router.get("/audit")
async def list_entries(
    request: Request,
    since: Annotated[str | None, Query(description="From this time or age (24h, 7d).")] = None,
    until: Annotated[str | None, Query(description="Up to this time or age.")] = None,
    actor: Annotated[str | None, Query(description="e.g. key:ab12cd34ef56, local:alice.")] = None,
    action: Annotated[str | None, Query(description="e.g. alias.set, version.stage.")] = None,
    target: Annotated[
        str | None, Query(description="iris/3, iris@production, or iris for all of a model.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    after_id: Annotated[int | None, Query(ge=0, description="Continue after this id.")] = None,
) -> dict[str, Any]:
    """Audit entries, oldest first, matching every filter given."""
    start = parse_instant(since, "since") if since else None
    end = parse_instant(until, "until") if until else None
    entries = await run_in_threadpool(
        serving_state(request).registry.audit.entries,
        since=start,
        until=end,
        actor=actor,
        action=action,
        target=target,
        limit=limit,
        after_id=after_id,
    )
    full = len(entries) == limit
    return {
        "entries": [e.to_dict() for e in entries],
        "next_after_id": entries[-1].id if full else None,
    }


@router.get("/audit/verify")
async def verify(request: Request) -> dict[str, Any]:
    """Recompute the hash chain: ``ok``, or the first entry that was changed or removed."""
    result = await run_in_threadpool(serving_state(request).registry.audit.verify)
    return result.to_dict()
