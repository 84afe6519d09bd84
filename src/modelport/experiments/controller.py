"""The experiment controller: ramps running experiments and stops them on a guardrail.

Every serving process runs one; only the holder of the ``experiments`` lease acts, so
replicas never ramp (or stop) an experiment twice. Each ``evaluationInterval`` it reads the
experiment's report and:

- stops it (all traffic back on the control) when a guardrail is breached;
- moves to the next ramp step once the step lasted ``ramp.interval`` and enrolled
  ``ramp.minUnits`` units in every variant, and no guardrail is breached;
- otherwise waits. At the last step (every unit enrolled) it keeps watching the guardrails
  until an operator promotes a winner or stops the experiment.

Decisions carry the experiment's revision: one taken on figures an operator's change made
stale (a stop, a new spec) is dropped by the store.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from modelport.experiments.store import Experiment, ExperimentStore, Phase
from modelport.inference.background import Repeated
from modelport.registry import Registry
from modelport.registry.audit import Actor
from modelport.store.leases import Leases
from modelport.store.tables import utcnow

if TYPE_CHECKING:
    from modelport.experiments.report import Report, Reports

log = logging.getLogger("modelport.experiments")

LEASE = "experiment-controller"
LEASE_TTL = timedelta(seconds=30)


class ExperimentController:
    def __init__(self, registry: Registry, leases: Leases, tick_s: float = 5.0) -> None:
        self._registry = registry
        self._store = ExperimentStore(registry)
        self._leases = leases
        self._tick_s = tick_s
        self._actor = Actor(f"controller:{leases.holder}")
        self._evaluated: dict[str, tuple[int, float]] = {}

    @functools.cached_property
    def _reports(self) -> Reports:
        """Made on the first evaluation: the statistics (scipy.stats) load only once an
        experiment runs, not in every server's start-up."""
        from modelport.experiments.report import Reports

        return Reports(self._registry)

    async def run(self) -> None:
        await Repeated("evaluating experiments", self._tick_off_loop, log).forever(self._tick_s)

    async def _tick_off_loop(self) -> None:
        await asyncio.to_thread(self.tick)

    def tick(self) -> None:
        if not self._leases.hold(LEASE, LEASE_TTL):
            return
        now = utcnow()
        experiments = self._store.experiments()
        names = {e.name for e in experiments}
        self._evaluated = {k: v for k, v in self._evaluated.items() if k in names}
        for experiment in experiments:
            if self._due(experiment):
                self.evaluate(experiment, now)

    def evaluate(self, experiment: Experiment, now: datetime) -> Report:
        """Judge the experiment on its report; stop or ramp it as the figures say."""
        report = self._reports.report(experiment)
        name, revision = experiment.name, experiment.revision
        if report.breaches:
            reason = "guardrail breached: " + "; ".join(str(b) for b in report.breaches)
            if self._store.stop(name, actor=self._actor, reason=reason, revision=revision):
                log.warning("experiment %s stopped (%s)", name, reason)
            return report
        state, spec = experiment.state, experiment.spec
        if state.step + 1 >= len(spec.ramp) or state.since is None:
            return report
        enrolled = report.units_by_step.get(state.step, {})
        fewest = min(enrolled.get(variant, 0) for variant in report.weights)
        lasted = now - state.since >= timedelta(seconds=spec.ramp_interval_s)
        if lasted and fewest >= spec.min_units:
            share = spec.ramp[state.step]
            reason = f"ramp step {share:g} % passed: {fewest} units per variant, no guardrail"
            if self._store.ramp(name, revision, actor=self._actor, reason=reason):
                log.info("experiment %s: %s", name, reason)
        return report

    def _due(self, experiment: Experiment) -> bool:
        if experiment.state.phase is not Phase.RUNNING:
            return False
        last = self._evaluated.get(experiment.name)
        now = time.monotonic()
        if (
            last is not None
            and last[0] == experiment.revision
            and now - last[1] < experiment.spec.evaluation_interval_s
        ):
            return False
        self._evaluated[experiment.name] = (experiment.revision, now)
        return True
