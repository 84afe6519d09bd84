"""Shadow traffic: a copy of a deployment's requests for the shadow slot, off the hot path.

An observer: after the primary has answered (the client already has its response), a sampled
copy of the checked input and the primary's outputs joins a bounded queue. A background task
merges queued copies into one call on the shadow's own batcher, compares its answer row by
row with the primary's, and counts the result in the shadow slot's window and in metrics. A
full queue drops copies (counted); a shadow that fails, or cannot read the input, is counted
too and never reaches a client.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass

from prometheus_client import Counter

from modelport.errors import ModelportError
from modelport.inference.batching import merge
from modelport.inference.observers import Outcome, QueuedObserver
from modelport.inference.pool import LoadedVersion
from modelport.inference.router import Router
from modelport.rollout.endpoint import DeploymentEndpoint
from modelport.rollout.metrics import RolloutMetrics
from modelport.rollout.recorder import RolloutRecorder, WindowKey
from modelport.rollout.window import compare_outputs
from modelport.runtimes.batch import Batch, Outputs

log = logging.getLogger("modelport.rollout")

MAX_QUEUED = 2_000
MAX_ROWS_PER_CALL = 512


@dataclass(frozen=True, slots=True)
class _Copy:
    key: WindowKey
    shadow: LoadedVersion
    inputs: Batch
    primary: Outputs


class ShadowMirror:
    def __init__(
        self, router: Router, recorder: RolloutRecorder, metrics: RolloutMetrics, dropped: Counter
    ) -> None:
        """``dropped``: the observers' drop counter (``modelport_observer_dropped``)."""
        self._router = router
        self._recorder = recorder
        self._metrics = metrics
        self._queue: QueuedObserver[_Copy] = QueuedObserver(
            "shadow", self._mirror, dropped, max_queued=MAX_QUEUED, max_batch=MAX_QUEUED
        )

    def observe(self, outcome: Outcome) -> None:
        ctx = outcome.context
        if ctx.deployment is None or outcome.inputs is None or outcome.outputs is None:
            return
        endpoint = self._router.endpoints.get(ctx.deployment)
        if not isinstance(endpoint, DeploymentEndpoint) or endpoint.shadow is None:
            return
        shadow = endpoint.shadow
        loaded = shadow.route.current
        if loaded is None or (shadow.weight < 100 and random.random() * 100 >= shadow.weight):
            return
        key = (endpoint.name, endpoint.epoch, shadow.name)
        self._queue.observe(_Copy(key, loaded, outcome.inputs, outcome.outputs))

    async def start(self) -> None:
        await self._queue.start()

    async def stop(self) -> None:
        await self._queue.stop()

    async def _mirror(self, copies: list[_Copy]) -> None:
        groups: defaultdict[int, list[_Copy]] = defaultdict(list)
        for copy in copies:
            groups[id(copy.shadow)].append(copy)
        for group in groups.values():
            step = _copies_per_call(group)
            for start in range(0, len(group), step):
                await self._call(group[0].shadow, group[start : start + step])

    async def _call(self, shadow: LoadedVersion, copies: list[_Copy]) -> None:
        started = time.perf_counter()
        try:
            with shadow.serving():  # an unload waits for this call
                batch = shadow.record.signature.conform(merge([c.inputs for c in copies]).columns)
                outputs = await shadow.batcher.predict(batch)
        except Exception as exc:
            detail = exc.detail if isinstance(exc, ModelportError) else repr(exc)
            log.debug(
                "shadow %s failed on %d copies: %s", shadow.record.address, len(copies), detail
            )
            for copy in copies:
                self._recorder.mirrored(copy.key, 0.0, None)
                self._metrics.failures.labels(copy.key[0], copy.key[2]).inc()
            return
        elapsed = time.perf_counter() - started
        row = 0
        for copy in copies:
            rows = copy.inputs.n_rows
            answer = {name: values[row : row + rows] for name, values in outputs.items()}
            row += rows
            comparison = compare_outputs(copy.primary, answer)
            self._recorder.mirrored(copy.key, elapsed, comparison)
            deployment, _, slot = copy.key
            self._metrics.mirrored.labels(deployment, slot).inc(comparison.rows)
            self._metrics.disagreed.labels(deployment, slot).inc(comparison.disagreed)
            self._metrics.abs_diff.labels(deployment, slot).inc(comparison.abs_diff_sum)
            self._metrics.latency.labels(deployment, slot).observe(elapsed)


def _copies_per_call(copies: list[_Copy]) -> int:
    """How many copies one call takes: about MAX_ROWS_PER_CALL rows."""
    rows = max(c.inputs.n_rows for c in copies)
    return max(1, MAX_ROWS_PER_CALL // rows)
