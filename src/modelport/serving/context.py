"""What every route needs, built once per app and kept on ``app.state.ctx``."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from modelport.config import Settings
from modelport.registry import Registry
from modelport.serving.host import ModelHost
from modelport.serving.metrics import ServingMetrics


@dataclass(frozen=True, slots=True)
class ServingContext:
    settings: Settings
    registry: Registry
    host: ModelHost
    metrics: ServingMetrics


def context(request: Request) -> ServingContext:
    ctx: ServingContext = request.app.state.ctx
    return ctx
