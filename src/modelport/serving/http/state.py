"""What every ordinary route needs, built once per app and kept on ``app.state.serving``."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from modelport.config import Settings
from modelport.inference import InferenceService, RegistryFollower
from modelport.inference.metrics import ServingMetrics
from modelport.jobs import Dispatch, JobStore
from modelport.registry import Registry
from modelport.rollout.plane import Rollouts
from modelport.security.policy import AccessPolicy


@dataclass(frozen=True, slots=True)
class ServingState:
    settings: Settings
    registry: Registry
    service: InferenceService
    follower: RegistryFollower
    metrics: ServingMetrics
    access: AccessPolicy
    rollouts: Rollouts | None
    """This process's deployment machinery; None when it serves no deployment."""
    jobs: JobStore
    dispatch: Dispatch
    """Hands submitted jobs to a worker: this process's runner, or a broker."""


def serving_state(request: Request) -> ServingState:
    state: ServingState = request.app.state.serving
    return state
