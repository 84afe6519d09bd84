"""The data plane: request context, router, model pool, batcher, executor, observers.

Nothing here knows HTTP: every transport is a thin adapter over one :class:`InferenceService`.
Policies plug in through two seams only: the :class:`Router` (which version answers) and the
observers (what happens after every outcome).
"""

from modelport.inference.context import InferenceContext, Transport, request_id_from
from modelport.inference.follower import RegistryFollower
from modelport.inference.observers import Observer, Outcome, QueuedObserver
from modelport.inference.pool import LoadedVersion, ModelPool
from modelport.inference.router import Route, Router, Target
from modelport.inference.service import Answer, InferenceService

__all__ = [
    "Answer",
    "InferenceContext",
    "InferenceService",
    "LoadedVersion",
    "ModelPool",
    "Observer",
    "Outcome",
    "QueuedObserver",
    "RegistryFollower",
    "Route",
    "Router",
    "Target",
    "Transport",
    "request_id_from",
]
