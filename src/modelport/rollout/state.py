"""Where a deployment's rollout stands, and the transitions between its phases.

The spec says what its owner wants (slots, strategy, steps, gates); the state says what the
controller and the operators have done with it so far: the phase, the canary step, and the
effective traffic weights every replica routes by. Each transition is a pure function from
(spec, state) to a new state; the store records it with its actor and reason.

A new ``epoch`` starts whenever the traffic split changes or a rollout restarts: the gates
only look at samples of the current epoch, so a step is judged on traffic served at its own
weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from modelport.errors import ConflictError
from modelport.rollout.spec import DeploymentSpec, Role, Strategy


class Phase(StrEnum):
    STABLE = "stable"
    """Weights as the spec gives them (direct, shadow) or the active colour (blue-green)."""
    PROGRESSING = "progressing"
    """A canary rollout stepping through its percentages behind its gates."""
    PAUSED = "paused"
    """Held at the current step by an operator, or by a breach with ``onBreach: pause``."""
    ROLLED_BACK = "rolled-back"
    """All traffic back on the primary, after a breach or an abort."""
    PROMOTED = "promoted"
    """The canary (or the new colour) takes all traffic."""


class Action(StrEnum):
    """What happened to a deployment: the ``action`` of its history entries."""

    APPLY = "apply"
    STEP = "step"
    PAUSE = "pause"
    RESUME = "resume"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    ABORT = "abort"
    SWITCH = "switch"
    EXPERIMENT = "experiment"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Allocation:
    """An experiment running on a direct deployment: ``share`` percent of the units are
    enrolled and split by the slots' weights; every other request meets the control slot
    and counts for nothing."""

    experiment: str
    control: str
    share: float
    step: int
    """The experiment's ramp step (exposures remember it, for the SRM check per step)."""
    per_request: bool = False
    """Each request is its own unit (``unit: request``), so nothing is sticky."""

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "control": self.control,
            "share": self.share,
            "step": self.step,
            "per_request": self.per_request,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Allocation:
        return cls(
            str(data["experiment"]),
            str(data["control"]),
            float(data["share"]),
            int(data["step"]),
            bool(data.get("per_request", False)),
        )


@dataclass(frozen=True, slots=True)
class RolloutState:
    phase: Phase
    weights: dict[str, float]
    """Percent of traffic per serving slot (shadow slots are mirrored, never weighted)."""
    step: int
    """Index into the spec's canary steps; 0 for other strategies."""
    epoch: int
    since: datetime
    """When the current epoch began (a canary step's interval counts from here)."""
    reason: str = ""
    experiment: Allocation | None = None
    """The experiment enrolling this deployment's traffic, if one runs."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "phase": self.phase.value,
            "weights": dict(self.weights),
            "step": self.step,
            "epoch": self.epoch,
            "since": self.since.isoformat(),
            "reason": self.reason,
        }
        if self.experiment is not None:
            data["experiment"] = self.experiment.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RolloutState:
        return cls(
            phase=Phase(data["phase"]),
            weights={k: float(v) for k, v in data["weights"].items()},
            step=int(data["step"]),
            epoch=int(data["epoch"]),
            since=datetime.fromisoformat(data["since"]),
            reason=str(data.get("reason", "")),
            experiment=(
                Allocation.from_json(data["experiment"]) if data.get("experiment") else None
            ),
        )

    @property
    def active(self) -> str:
        """The slot taking the most traffic (the live colour of a blue-green deployment)."""
        return max(self.weights, key=lambda slot: self.weights[slot])


def initial(spec: DeploymentSpec, now: datetime, epoch: int = 1) -> RolloutState:
    """The state a freshly applied spec starts in."""
    primary = spec.primary.name
    if spec.strategy is Strategy.CANARY:
        return _at_step(spec, 0, Phase.PROGRESSING, epoch, now, "rollout started")
    if spec.strategy is Strategy.BLUE_GREEN:
        return RolloutState(Phase.STABLE, _all_on(spec, primary), 0, epoch, now)
    weights = {s.name: s.weight for s in spec.slots if s.role is not Role.SHADOW}
    return RolloutState(Phase.STABLE, weights, 0, epoch, now)


def reapplied(
    spec: DeploymentSpec, old_spec: DeploymentSpec, state: RolloutState, now: datetime
) -> RolloutState:
    """The state after ``apply`` of a changed spec: a new rollout from its first step, unless
    only settings that leave traffic alone changed (gates, intervals, labels)."""
    if _traffic(spec) == _traffic(old_spec):
        return state
    return initial(spec, now, state.epoch + 1)


def advanced(spec: DeploymentSpec, state: RolloutState, now: datetime, reason: str) -> RolloutState:
    """The next canary step, or promotion after the last one."""
    _require(state, {Phase.PROGRESSING}, "advance")
    if state.step + 1 >= len(spec.steps):
        return promoted(spec, state, now, reason)
    return _at_step(spec, state.step + 1, Phase.PROGRESSING, state.epoch + 1, now, reason)


def rolled_back(
    spec: DeploymentSpec, state: RolloutState, now: datetime, reason: str
) -> RolloutState:
    """Every request back on the primary, at once."""
    _require_rollout(spec, "roll back")
    return RolloutState(
        Phase.ROLLED_BACK,
        _all_on(spec, spec.primary.name),
        state.step,
        state.epoch + 1,
        now,
        reason,
    )


def paused(spec: DeploymentSpec, state: RolloutState, now: datetime, reason: str) -> RolloutState:
    _require_rollout(spec, "pause")
    _require(state, {Phase.PROGRESSING}, "pause")
    return replace(state, phase=Phase.PAUSED, reason=reason)


def resumed(spec: DeploymentSpec, state: RolloutState, now: datetime, reason: str) -> RolloutState:
    """Go on from the held step; after a rollback, start the rollout again from step one."""
    _require_rollout(spec, "resume")
    _require(state, {Phase.PAUSED, Phase.ROLLED_BACK}, "resume")
    step = state.step if state.phase is Phase.PAUSED else 0
    return _at_step(spec, step, Phase.PROGRESSING, state.epoch + 1, now, reason)


def promoted(spec: DeploymentSpec, state: RolloutState, now: datetime, reason: str) -> RolloutState:
    """All traffic to the canary (the new colour), skipping what steps remain."""
    _require_rollout(spec, "promote")
    canary = spec.canary
    assert canary is not None  # _require_rollout: canary and blue-green have one
    return RolloutState(
        Phase.PROMOTED, _all_on(spec, canary.name), state.step, state.epoch + 1, now, reason
    )


def switched(spec: DeploymentSpec, state: RolloutState, now: datetime, reason: str) -> RolloutState:
    """Blue-green: send everything to the other colour (and back again the same way)."""
    if spec.strategy is not Strategy.BLUE_GREEN:
        raise ConflictError(
            f"deployment {spec.name!r} is {spec.strategy.value}; only blue-green switches"
        )
    canary = spec.canary
    assert canary is not None
    to = spec.primary.name if state.active == canary.name else canary.name
    phase = Phase.PROMOTED if to == canary.name else Phase.STABLE
    return RolloutState(phase, _all_on(spec, to), 0, state.epoch + 1, now, reason)


def allocated(allocation: Allocation) -> Transition:
    """An experiment enrols ``allocation.share`` percent of the units, split by the spec's
    weights (a new epoch: gates and windows start afresh)."""

    def change(
        spec: DeploymentSpec, state: RolloutState, now: datetime, reason: str
    ) -> RolloutState:
        _require_direct(spec, "run an experiment")
        weights = {s.name: s.weight for s in spec.slots if s.role is not Role.SHADOW}
        return RolloutState(Phase.STABLE, weights, 0, state.epoch + 1, now, reason, allocation)

    return change


def settled_on(slot: str) -> Transition:
    """An experiment ended: every request to ``slot`` (the control after a stop, the winner
    after a promotion) until the deployment's spec changes."""

    def change(
        spec: DeploymentSpec, state: RolloutState, now: datetime, reason: str
    ) -> RolloutState:
        phase = Phase.STABLE if slot == spec.primary.name else Phase.PROMOTED
        return RolloutState(phase, _all_on(spec, slot), 0, state.epoch + 1, now, reason)

    return change


def _require_direct(spec: DeploymentSpec, what: str) -> None:
    if spec.strategy is not Strategy.DIRECT:
        raise ConflictError(
            f"deployment {spec.name!r} is {spec.strategy.value}; only a direct deployment "
            f"(its slots are the variants) can {what}"
        )


def _at_step(
    spec: DeploymentSpec, step: int, phase: Phase, epoch: int, now: datetime, reason: str
) -> RolloutState:
    canary = spec.canary
    assert canary is not None
    share = spec.steps[step]
    weights = {spec.primary.name: 100.0 - share, canary.name: share}
    return RolloutState(phase, weights, step, epoch, now, reason)


def _all_on(spec: DeploymentSpec, slot: str) -> dict[str, float]:
    return {
        s.name: 100.0 if s.name == slot else 0.0 for s in spec.slots if s.role is not Role.SHADOW
    }


def _traffic(spec: DeploymentSpec) -> tuple[object, ...]:
    """What decides who answers: the strategy, the slots and the steps."""
    return (spec.strategy, spec.slots, spec.steps)


def _require_rollout(spec: DeploymentSpec, what: str) -> None:
    if spec.strategy not in (Strategy.CANARY, Strategy.BLUE_GREEN):
        raise ConflictError(
            f"deployment {spec.name!r} is {spec.strategy.value}: there is no rollout to {what}"
        )


def _require(state: RolloutState, phases: set[Phase], what: str) -> None:
    if state.phase not in phases:
        allowed = " or ".join(sorted(p.value for p in phases))
        raise ConflictError(
            f"cannot {what} a rollout that is {state.phase.value} (needs {allowed})"
        )


Transition = Callable[[DeploymentSpec, RolloutState, datetime, str], RolloutState]


@dataclass(frozen=True, slots=True)
class Operation:
    change: Transition
    summary: str


BY_OPERATOR: dict[Action, Operation] = {
    Action.PAUSE: Operation(paused, "Hold a canary at its current step."),
    Action.RESUME: Operation(
        resumed, "Go on from the held step; after a rollback, start again from step one."
    ),
    Action.PROMOTE: Operation(promoted, "Send all traffic to the canary (or new colour) now."),
    Action.ROLLBACK: Operation(rolled_back, "Send all traffic back to the primary now."),
    Action.ABORT: Operation(
        rolled_back, "Give up the rollout: all traffic back to the primary (as rollback)."
    ),
    Action.SWITCH: Operation(
        switched, "Blue-green: send all traffic to the other colour (again to switch back)."
    ),
}
"""What an operator may do to a rollout (CLI and API alike), and how it changes the state."""
