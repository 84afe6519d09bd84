"""The rollout controller: steps canaries forward behind their gates, and rolls them back.

Every serving process runs one, but only the holder of the database lease acts, so several
replicas never step (or roll back) one deployment twice. Each evaluation interval it sums the
samples all replicas wrote for the deployment's current epoch over the gate window, and:

- rolls back (or pauses, with ``onBreach: pause``) as soon as a gate is breached;
- advances to the next step once the step interval is over, the canary has served the
  minimum number of requests, and every gate passes; after the last step it promotes;
- otherwise waits.

Each decision is a transition recorded with the controller as actor and the figures as reason.
A decision is dropped when the deployment moved on meanwhile (an operator paused it, a new spec
was applied): the epoch it was taken on no longer holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta

from modelport.inference.background import Repeated
from modelport.registry.audit import Actor
from modelport.rollout.gates import Evaluation, Verdict, evaluate
from modelport.rollout.spec import OnBreach, Strategy
from modelport.rollout.state import Action, Phase, Transition, advanced, paused, rolled_back
from modelport.rollout.status import gate_window_start, merged_windows
from modelport.rollout.store import Deployment, DeploymentStore
from modelport.rollout.telemetry import Telemetry
from modelport.rollout.window import SlotWindow
from modelport.store.tables import utcnow

log = logging.getLogger("modelport.rollout")

LEASE_TTL = timedelta(seconds=10)
PRUNE_EVERY_S = 300.0
KEEP_SAMPLES = timedelta(hours=2)


class RolloutController:
    def __init__(self, store: DeploymentStore, telemetry: Telemetry, tick_s: float = 1.0) -> None:
        self._store = store
        self._telemetry = telemetry
        self._tick_s = tick_s
        self._actor = Actor(f"controller:{telemetry.replica}")
        self._evaluated: dict[tuple[str, int], float] = {}
        self._pruned = 0.0

    async def run(self) -> None:
        await Repeated("stepping rollouts", self._tick_off_loop, log).forever(self._tick_s)

    async def _tick_off_loop(self) -> None:
        await asyncio.to_thread(self.tick)

    def tick(self) -> None:
        """One round: take or renew the lease, then evaluate every rollout that is due."""
        if not self._telemetry.hold_lease(LEASE_TTL):
            return
        now = utcnow()
        for deployment in self._store.deployments():
            if self._due(deployment):
                self.evaluate(deployment, now)
        if time.monotonic() - self._pruned > PRUNE_EVERY_S:
            self._telemetry.prune(KEEP_SAMPLES)
            self._pruned = time.monotonic()

    def evaluate(self, deployment: Deployment, now: datetime) -> Evaluation:
        """Judge the current step on every replica's samples; act on the verdict."""
        spec, state = deployment.spec, deployment.state
        canary = spec.canary
        assert canary is not None  # a canary strategy has one
        windows = merged_windows(self._telemetry, deployment, gate_window_start(deployment, now))
        empty = SlotWindow()
        result = evaluate(
            spec.gates,
            primary=windows.get(spec.primary.name, empty),
            canary=windows.get(canary.name, empty),
            shadow=None if spec.shadow is None else windows.get(spec.shadow.name, empty),
            min_requests=spec.min_requests,
        )
        reason = "; ".join(result.reasons)
        if result.verdict is Verdict.BREACH:
            if spec.on_breach is OnBreach.PAUSE:
                self._act(deployment, Action.PAUSE, paused, f"gate breached: {reason}")
            else:
                self._act(deployment, Action.ROLLBACK, rolled_back, f"gate breached: {reason}")
        elif result.verdict is Verdict.PASS and now - state.since >= timedelta(
            seconds=spec.step_interval_s
        ):
            share = spec.steps[state.step]
            last = state.step + 1 >= len(spec.steps)
            action = Action.PROMOTE if last else Action.STEP
            self._act(deployment, action, advanced, f"step {share:g} % passed: {reason}")
        return result

    def _due(self, deployment: Deployment) -> bool:
        spec, state = deployment.spec, deployment.state
        if spec.strategy is not Strategy.CANARY or state.phase is not Phase.PROGRESSING:
            return False
        key = (deployment.name, state.epoch)
        last = self._evaluated.get(key)
        if last is not None and time.monotonic() - last < spec.evaluation_interval_s:
            return False
        self._evaluated = {k: v for k, v in self._evaluated.items() if k[0] != deployment.name}
        self._evaluated[key] = time.monotonic()
        return True

    def _act(self, deployment: Deployment, action: Action, change: Transition, reason: str) -> None:
        done = self._store.transition(
            deployment.name,
            action,
            change,
            reason=reason,
            actor=self._actor,
            epoch=deployment.state.epoch,
        )
        if done is not None:
            level = logging.INFO if action is Action.STEP else logging.WARNING
            log.log(level, "deployment %s: %s (%s)", deployment.name, action.value, reason)
