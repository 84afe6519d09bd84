"""Shadow traffic: a copy of a deployment's requests for the shadow slot, off the hot path.

An observer: after the primary has answered (the client already has its response), a sampled
copy of the checked input and the primary's outputs joins a bounded queue. A background task
merges queued copies into one call on the shadow's own batcher, compares its answer row by
row with the primary's, and counts the result in the shadow slot's window and in metrics. A
full queue drops copies (counted); a shadow that fails, or cannot read the input, is counted
too and never reaches a client. Each copy's answer also goes, as an outcome marked
``shadow``, to the observers given (the prediction log), so a shadow's predictions can be
read and judged beside the primary's.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from prometheus_client import Counter, Histogram

from modelport.errors import ModelportError
from modelport.inference.batching import merge
from modelport.inference.context import InferenceContext
from modelport.inference.observers import Observer, Outcome, QueuedObserver, notify
from modelport.inference.pool import LoadedVersion
from modelport.inference.router import Router
from modelport.rollout.endpoint import DeploymentEndpoint
from modelport.rollout.metrics import RolloutMetrics
from modelport.rollout.recorder import RolloutRecorder, WindowKey
from modelport.rollout.window import compare_outputs
from modelport.runtimes.batch import Batch, Outputs

log = logging.getLogger("modelport.rollout")

MAX_QUEUED = 8_192
MAX_ROWS_PER_CALL = 2_048
LINGER_S = 0.25
"""Copies gather this long before a shadow call: a model call has a fixed cost (for a
gradient-boosted model, a millisecond and a GIL hand-over per tree), so fewer, larger calls
cost less CPU. The queue holds more than a quarter second of a busy server's copies."""


class _Copy(NamedTuple):
    """One mirrored request (a named tuple: made per request, a third of a frozen
    dataclass's cost)."""

    key: WindowKey
    shadow: LoadedVersion
    inputs: Batch
    primary: Outputs
    context: InferenceContext


class ShadowMirror:
    def __init__(
        self,
        router: Router,
        recorder: RolloutRecorder,
        metrics: RolloutMetrics,
        dropped: Counter,
        observers: Sequence[Observer] = (),
    ) -> None:
        """``dropped``: the observers' drop counter (``modelport_observer_dropped``);
        ``observers``: who also sees each shadow answer."""
        self._router = router
        self._observers = observers
        self._recorder = recorder
        self._metrics = metrics
        self._children: dict[tuple[str, str], _Children] = {}
        self._queue: QueuedObserver[_Copy] = QueuedObserver(
            "shadow",
            self._mirror,
            dropped,
            max_queued=MAX_QUEUED,
            max_batch=MAX_QUEUED,
            linger_s=LINGER_S,
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
        self._queue.observe(_Copy(key, loaded, outcome.inputs, outcome.outputs, ctx))

    async def start(self) -> None:
        await self._queue.start()

    async def stop(self) -> None:
        await self._queue.stop()

    async def _mirror(self, copies: list[_Copy]) -> None:
        groups: defaultdict[tuple[WindowKey, int], list[_Copy]] = defaultdict(list)
        for copy in copies:
            groups[copy.key, id(copy.shadow)].append(copy)
        for group in groups.values():
            step = _copies_per_call(group)
            for start in range(0, len(group), step):
                await self._call(group[start : start + step])

    async def _call(self, copies: list[_Copy]) -> None:
        """One call for copies of one window; one comparison over all their rows."""
        key, shadow = copies[0].key, copies[0].shadow
        children = self._children.get((key[0], key[2])) or self._new_children(key)
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
            self._recorder.mirrored(key, len(copies), 0.0, None)
            children.failures.inc(len(copies))
            if isinstance(exc, ModelportError):
                self._report(copies, None, exc, 0.0)
            return
        elapsed = time.perf_counter() - started
        self._report(copies, outputs, None, elapsed)
        primary = {
            name: np.concatenate([c.primary[name] for c in copies]) for name in copies[0].primary
        }
        comparison = compare_outputs(primary, outputs)
        self._recorder.mirrored(key, len(copies), elapsed, comparison)
        children.mirrored.inc(comparison.rows)
        children.disagreed.inc(comparison.disagreed)
        children.abs_diff.inc(comparison.abs_diff_sum)
        children.latency.observe(elapsed)

    def _report(
        self,
        copies: list[_Copy],
        outputs: Outputs | None,
        error: ModelportError | None,
        elapsed_s: float,
    ) -> None:
        """Each copy's own rows of the shadow's answer, as an outcome of its request."""
        if not self._observers:
            return
        record = copies[0].shadow.record
        start = 0
        for copy in copies:
            stop = start + copy.inputs.n_rows
            own = None if outputs is None else {n: a[start:stop] for n, a in outputs.items()}
            context = replace(
                copy.context, model=record.name, version=record.version, slot=copy.key[2]
            )
            notify(self._observers, Outcome(context, copy.inputs, own, error, elapsed_s, True))
            start = stop

    def _new_children(self, key: WindowKey) -> _Children:
        deployment, _, slot = key
        metrics = self._metrics
        children = _Children(
            metrics.mirrored.labels(deployment, slot),
            metrics.disagreed.labels(deployment, slot),
            metrics.abs_diff.labels(deployment, slot),
            metrics.failures.labels(deployment, slot),
            metrics.latency.labels(deployment, slot),
        )
        self._children[deployment, slot] = children
        return children


@dataclass(frozen=True, slots=True)
class _Children:
    """Metric children of one (deployment, slot): labels() costs microseconds per call."""

    mirrored: Counter
    disagreed: Counter
    abs_diff: Counter
    failures: Counter
    latency: Histogram


def _copies_per_call(copies: list[_Copy]) -> int:
    """How many copies one call takes: about MAX_ROWS_PER_CALL rows."""
    rows = max(c.inputs.n_rows for c in copies)
    return max(1, MAX_ROWS_PER_CALL // rows)
