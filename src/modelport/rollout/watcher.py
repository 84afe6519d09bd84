"""Keeping a replica's deployments in step with the database.

The watcher polls every deployment's revision (one small query, about once a second). When
one changes it reads that deployment, loads and warms any slot model this process does not
hold yet, and only then installs the new endpoints in the router, by one assignment: a
blue-green switch never sends a request to a colour that is still loading. A slot whose
model reference did not change keeps its route and its loaded version. When the database
cannot be reached, the replica goes on serving its last known state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from modelport.inference.background import Repeated
from modelport.inference.follower import RegistryFollower
from modelport.inference.router import Route, Router
from modelport.registry import ModelAddress
from modelport.rollout.endpoint import DeploymentEndpoint
from modelport.rollout.metrics import RolloutMetrics
from modelport.rollout.store import Deployment, DeploymentStore

log = logging.getLogger("modelport.rollout")

RouteKey = tuple[str, str, str, int]
"""(deployment, slot, model reference, warm-up calls): what makes a slot's route reusable."""


class DeploymentWatcher:
    def __init__(
        self,
        store: DeploymentStore,
        router: Router,
        follower: RegistryFollower,
        names: Iterable[str] | None,
        metrics: RolloutMetrics,
    ) -> None:
        """``names``: the deployments this process serves; None serves every deployment,
        including those applied later."""
        self._store = store
        self._router = router
        self._follower = follower
        self._names = None if names is None else frozenset(names)
        self._metrics = metrics
        self._deployments: dict[str, Deployment] = {}
        self._routes: dict[RouteKey, Route] = {}
        self._poll = Repeated(
            "refreshing deployments (serving the last known state)", self.refresh, log
        )

    def missing(self) -> list[str]:
        """Deployments asked for by name that the database does not hold."""
        return sorted((self._names or frozenset()) - set(self._deployments))

    def wake(self) -> None:
        """Look now rather than at the next poll (after a change through this process's API)."""
        self._poll.wake()

    async def watch(self, interval_s: float) -> None:
        await self._poll.forever(interval_s)

    async def refresh_logged(self) -> None:
        await self._poll.once()

    async def refresh(self) -> None:
        revisions = await asyncio.to_thread(self._store.revisions)
        wanted = {
            name: revision
            for name, revision in revisions.items()
            if self._names is None or name in self._names
        }
        current = {name: d.revision for name, d in self._deployments.items()}
        if wanted == current:
            return
        deployments = {
            name: self._deployments[name]
            if current.get(name) == revision
            else await asyncio.to_thread(self._store.get, name)
            for name, revision in wanted.items()
        }
        await self._install(deployments)

    async def _install(self, deployments: dict[str, Deployment]) -> None:
        routes: dict[RouteKey, Route] = {}
        endpoints: dict[str, DeploymentEndpoint] = {}
        for name, deployment in deployments.items():
            slot_routes = {}
            for slot in deployment.spec.slots:
                key = (name, slot.name, slot.model, deployment.spec.warmup_requests)
                route = self._routes.get(key) or Route(
                    ModelAddress.parse(slot.model), deployment.spec.warmup_requests
                )
                routes[key] = slot_routes[slot.name] = route
            endpoints[name] = DeploymentEndpoint(deployment, slot_routes)
        fresh = [route for key, route in routes.items() if key not in self._routes]
        await self._follower.refresh(fresh)  # loaded and warmed before any request sees them
        self._router.endpoints = endpoints
        for key, route in self._routes.items():
            if key not in routes:
                self._follower.retire(route)
        for name, deployment in deployments.items():
            for slot_name, weight in deployment.state.weights.items():
                self._metrics.weight.labels(name, slot_name).set(weight)
            if self._deployments.get(name) is not deployment:
                log.info(
                    "deployment %s at revision %d: %s",
                    name,
                    deployment.revision,
                    _weights(deployment),
                )
        self._routes, self._deployments = routes, deployments


def _weights(deployment: Deployment) -> str:
    state = deployment.state
    split = ", ".join(f"{slot} {weight:g} %" for slot, weight in state.weights.items())
    return f"{state.phase.value}, {split}"
