"""Liveness, readiness, served-model status and Prometheus exposition."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.responses import Response

from modelport.errors import ModelNotReadyError
from modelport.security.keys import Scope
from modelport.security.policy import exposure_warning
from modelport.serving.http.access import requires
from modelport.serving.http.state import serving_state

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> dict[str, Any]:
    """Readiness: every served model is loaded and warmed."""
    state = serving_state(request)
    router = state.service.router
    if not router.ready():
        raise ModelNotReadyError(f"not ready: {', '.join(router.waiting())}")
    exposure = exposure_warning(state.settings)
    warnings = [] if exposure is None else [exposure]
    return {
        "status": "ready",
        "models": router.status(),
        "deployments": router.deployments(),
        "warnings": warnings,
    }


@router.get("/api/serving", dependencies=[requires(Scope.READ)])
async def serving_status(request: Request) -> dict[str, Any]:
    """What each served model follows, which version serves, and the last load failure; what
    each deployment's slots serve in this process."""
    router = serving_state(request).service.router
    return {"models": router.status(), "deployments": router.deployments()}


@router.get(
    "/metrics",
    dependencies=[requires(Scope.READ)],
    response_class=Response,
    responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}},
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of this server (every worker's, summed)."""
    state = serving_state(request)
    registry = state.metrics.registry
    if state.settings.metrics_dir is not None:  # several workers: sum what every process wrote
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(state.settings.metrics_dir))  # type: ignore[no-untyped-call]
    body = generate_latest(registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
