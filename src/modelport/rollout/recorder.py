"""Counting what each deployment slot serves, and telling the other replicas about it.

An observer of the data plane: every outcome of a request to a deployment lands in the
window of its (deployment, epoch, slot), in memory. About once a second the windows are
written to the database as one delta row each, for the rollout controller to sum over all
replicas, and a heartbeat records what this process's slots serve. Writes happen on a thread,
off the event loop; when the database is unreachable the second's figures are dropped (the
controller, reading the same database, could not use them either) and serving goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict

from modelport.errors import ModelportError
from modelport.inference.background import Repeated
from modelport.inference.observers import Outcome
from modelport.inference.router import Router
from modelport.rollout.endpoint import DeploymentEndpoint
from modelport.rollout.telemetry import Sample, Telemetry
from modelport.rollout.window import Comparison, SlotWindow

log = logging.getLogger("modelport.rollout")

WindowKey = tuple[str, int, str]
"""(deployment, epoch, slot)"""


class RolloutRecorder:
    def __init__(
        self,
        router: Router,
        telemetry: Telemetry,
        *,
        flush_s: float = 1.0,
        heartbeat_s: float = 2.0,
    ) -> None:
        self._router = router
        self._telemetry = telemetry
        self._flush_s = flush_s
        self._heartbeat_s = heartbeat_s
        self._windows: defaultdict[WindowKey, SlotWindow] = defaultdict(SlotWindow)
        self._task: asyncio.Task[None] | None = None
        self._next_heartbeat = 0.0

    def observe(self, outcome: Outcome) -> None:
        ctx = outcome.context
        if ctx.deployment is None or ctx.slot is None:
            return
        endpoint = self._router.endpoints.get(ctx.deployment)
        if not isinstance(endpoint, DeploymentEndpoint):
            return
        key = (ctx.deployment, endpoint.epoch, ctx.slot)
        self._windows[key].served(outcome.status, outcome.elapsed_s, outcome.outputs)

    def mirrored(
        self, key: WindowKey, copies: int, elapsed_s: float, comparison: Comparison | None
    ) -> None:
        """A shadow's answer to ``copies`` mirrored requests (one call), compared with the
        primary's (None: the call failed)."""
        window = self._windows[key]
        if comparison is None:
            window.mirror_failed(copies)
        else:
            window.served_at_once(copies, elapsed_s)
            window.mirrored(comparison)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="rollout-recorder")

    async def stop(self) -> None:
        """Write what is counted, then leave: ``deployments status`` stops listing us."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(ModelportError):
            await asyncio.to_thread(self._write, self._take())
            await asyncio.to_thread(self._telemetry.leave)

    async def _run(self) -> None:
        await Repeated("writing rollout figures", self._report, log).forever(self._flush_s)

    async def _report(self) -> None:
        """This second's figures; every ``heartbeat_s``, what this replica serves."""
        await asyncio.to_thread(self._write, self._take())
        if time.monotonic() >= self._next_heartbeat:
            self._next_heartbeat = time.monotonic() + self._heartbeat_s
            serving = {"deployments": self._router.deployments()}
            await asyncio.to_thread(self._telemetry.heartbeat, serving)

    def _take(self) -> dict[WindowKey, SlotWindow]:
        """The windows counted so far (on the event loop, where they are counted)."""
        windows, self._windows = self._windows, defaultdict(SlotWindow)
        return windows

    def _write(self, windows: dict[WindowKey, SlotWindow]) -> None:
        self._telemetry.write_samples(
            Sample(deployment, epoch, slot, dict(window.to_json()))
            for (deployment, epoch, slot), window in windows.items()
            if not window.empty
        )
