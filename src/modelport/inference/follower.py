"""Following the registry: each route loads what its address resolves to, then switches.

A watcher polls the registry (and wakes at once after an alias move through the API). When a
route's address resolves to a new version, the pool loads and warms it off the event loop,
then the route switches by one reference assignment: requests in flight finish on the version
they started with. A version that fails for good (hash mismatch, untrusted, load error) never
takes traffic and is not tried again until the address moves; a transient failure (database
or store unreachable) is retried with exponential backoff. The old version keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from modelport.errors import ModelportError
from modelport.inference.background import Repeated
from modelport.inference.metrics import ServingMetrics
from modelport.inference.pool import ModelPool, is_permanent
from modelport.inference.router import Route, Router
from modelport.registry import Registry, VersionRecord

log = logging.getLogger("modelport.inference")

RETRY_FIRST_S = 1.0
RETRY_MAX_S = 60.0


class RegistryFollower:
    def __init__(
        self, registry: Registry, router: Router, pool: ModelPool, metrics: ServingMetrics
    ) -> None:
        self._registry = registry
        self._router = router
        self._pool = pool
        self._metrics = metrics
        self._refreshing = asyncio.Lock()
        """One refresh at a time: two would both load a new version for the same route."""
        self._poll = Repeated("checking the registry for model changes", self.refresh, log)

    def wake(self) -> None:
        """Check the registry now instead of at the next poll (e.g. after an API alias move)."""
        self._poll.wake()

    async def watch(self, interval_s: float) -> None:
        """Follow the registry until cancelled; the first load happens at start-up."""
        await self._poll.forever(interval_s)

    async def refresh_logged(self) -> None:
        """One refresh that never raises (the server starts, and reports, whatever happens)."""
        await self._poll.once()

    async def refresh(self, routes: Iterable[Route] | None = None) -> None:
        """Bring ``routes`` (default: every route of the router) in step with the registry."""
        async with self._refreshing:
            for route in self._router.all_routes() if routes is None else routes:
                await self._follow(route)

    def retire(self, route: Route) -> None:
        """A route nobody routes to any more (a slot removed from a deployment): let go of
        its version, which unloads once no other route uses it."""
        previous = route.current
        route.current = None
        if previous is not None:
            self._pool.release(previous)

    async def _follow(self, route: Route) -> None:
        if route.retry_at > time.monotonic():
            return
        try:
            record = await asyncio.to_thread(self._registry.resolve, route.address)
        except ModelportError as exc:
            # resolving is cheap: try again at the next poll, without backoff
            self._failed(route, f"cannot resolve {route.address}: {exc.detail}", None, retry=False)
            return
        current = route.current.record.version if route.current else None
        if record.version not in (current, route.failed_version):
            await self._switch(route, record)

    def problems(self) -> list[str]:
        """Why routes have nothing to serve (start-up fails fast on these)."""
        return [
            f"{route.address}: {route.last_error or 'not loaded'}"
            for route in self._router.routes.values()
            if route.current is None
        ]

    async def _switch(self, route: Route, record: VersionRecord) -> None:
        try:
            loaded = await self._pool.acquire(record, route.warmup)
        except Exception as exc:
            detail = exc.detail if isinstance(exc, ModelportError) else repr(exc)
            self._failed(
                route,
                f"{record.address} failed to load: {detail}",
                record.version,
                retry=not is_permanent(exc),
            )
            return
        previous = route.serving(loaded)
        self._metrics.model_loaded.labels(route.name).set(record.version)
        if previous is None:
            log.info("%s serving %s", route.address, record.address)
        else:
            self._pool.release(previous)
            log.info(
                "%s switched from %s to %s", route.address, previous.record.address, record.address
            )

    def _failed(self, route: Route, message: str, version: int | None, *, retry: bool) -> None:
        backoff = min(RETRY_FIRST_S * 2**route.attempts, RETRY_MAX_S) if retry else None
        if route.failed(message, version=version, retry_in_s=backoff):
            keeps = f"; still serving {route.current.record.address}" if route.current else ""
            again = f"; retrying in {backoff:.0f} s" if backoff is not None else ""
            log.error("%s%s%s", message, keeps, again)
