"""Everything a serving process runs for deployments, built and started as one piece.

The watcher installs deployments in the router; the recorder and the shadow mirror are
observers of the data plane; the controller competes for the lease and steps rollouts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from prometheus_client import Counter

from modelport.inference.follower import RegistryFollower
from modelport.inference.observers import Observer
from modelport.inference.router import Router
from modelport.registry import Registry
from modelport.rollout.controller import RolloutController
from modelport.rollout.metrics import RolloutMetrics
from modelport.rollout.recorder import RolloutRecorder
from modelport.rollout.shadow import ShadowMirror
from modelport.rollout.store import DeploymentStore
from modelport.rollout.telemetry import Telemetry
from modelport.rollout.watcher import DeploymentWatcher
from modelport.store.leases import replica_id


class Rollouts:
    def __init__(
        self,
        registry: Registry,
        router: Router,
        follower: RegistryFollower,
        metrics: RolloutMetrics,
        dropped: Counter,
        names: Sequence[str] | None,
        poll_s: float,
        shadow_observers: Sequence[Observer] = (),
    ) -> None:
        """``names``: the deployments to serve; None serves all of them.
        ``shadow_observers``: who sees the shadows' answers (the prediction log)."""
        store = DeploymentStore(registry)
        telemetry = Telemetry(registry.database, replica_id())
        self.watcher = DeploymentWatcher(store, router, follower, names, metrics)
        self.recorder = RolloutRecorder(router, telemetry)
        self.mirror = ShadowMirror(router, self.recorder, metrics, dropped, shadow_observers)
        self.controller = RolloutController(store, telemetry)
        self._poll_s = poll_s
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def observers(self) -> list[Observer]:
        return [self.recorder, self.mirror]

    async def load(self) -> list[str]:
        """Install the deployments at start-up; what is missing, for the start-up check."""
        await self.watcher.refresh_logged()
        return [f"deployment {name}: not found" for name in self.watcher.missing()]

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.watcher.watch(self._poll_s), name="deployment-watcher"),
            asyncio.create_task(self.controller.run(), name="rollout-controller"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
