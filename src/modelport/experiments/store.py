"""Experiments in the registry database: spec, state and history, tied to their deployment.

An experiment's traffic lives on its deployment (an :class:`Allocation` in the rollout state),
so every replica routes by it as soon as it follows the deployment's revision. Each change that
moves traffic (start, a ramp step, stop, promotion) writes the experiment row and the
deployment's state in one transaction, with a history entry for each and an audit record.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from modelport.errors import ConflictError, InvalidInputError
from modelport.experiments.spec import ExperimentSpec, Unit, parse_document
from modelport.registry import ModelAddress, Registry
from modelport.registry.audit import Actor, append
from modelport.rollout.spec import DeploymentSpec, Role, Strategy
from modelport.rollout.state import Action, Allocation, allocated, settled_on
from modelport.rollout.store import DeploymentStore
from modelport.store.tables import ExperimentEventRow, ExperimentRow, ExposureRow, utcnow
from modelport.store.unit_of_work import Database, named_row

MAX_HISTORY = 1000


class Phase(StrEnum):
    DRAFT = "draft"
    """Applied, not started: the deployment routes as it did."""
    RUNNING = "running"
    """Enrolling units at the current ramp step."""
    STOPPED = "stopped"
    """Ended by an operator or a guardrail: all traffic on the control."""
    CONCLUDED = "concluded"
    """A winner was promoted: all traffic on it, its alias moved."""


@dataclass(frozen=True, slots=True)
class ExperimentState:
    phase: Phase
    step: int = 0
    """Index into the ramp steps."""
    since: datetime | None = None
    """When the current ramp step began."""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    reason: str = ""
    winner: str | None = None
    control: str | None = None
    weights: dict[str, float] | None = None
    """The variants and their planned split, as the deployment had them at the start: what
    reports compare with, whatever becomes of the deployment later."""

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase.value,
            "step": self.step,
            "since": _iso(self.since),
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "reason": self.reason,
            "winner": self.winner,
            "control": self.control,
            "weights": self.weights,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExperimentState:
        return cls(
            Phase(data["phase"]),
            int(data["step"]),
            _time(data.get("since")),
            _time(data.get("started_at")),
            _time(data.get("ended_at")),
            str(data.get("reason", "")),
            data.get("winner"),
            data.get("control"),
            data.get("weights"),
        )


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@dataclass(frozen=True, slots=True)
class Experiment:
    spec: ExperimentSpec
    state: ExperimentState
    revision: int
    created_at: datetime
    updated_at: datetime

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def share(self) -> float:
        """Percent of units enrolled now (0 unless running)."""
        return self.spec.ramp[self.state.step] if self.state.phase is Phase.RUNNING else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "deployment": self.spec.deployment,
            "revision": self.revision,
            "spec": self.spec.to_document(),
            "state": {**self.state.to_json(), "share": self.share},
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class ExperimentEvent:
    id: int
    experiment: str
    at: datetime
    actor: str
    action: str
    reason: str
    state: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "experiment": self.experiment,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "reason": self.reason,
            "state": self.state,
        }


class ExperimentStore:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._db: Database = registry.database
        self._deployments = DeploymentStore(registry)

    def apply(self, spec: ExperimentSpec, *, actor: Actor | None = None) -> tuple[Experiment, bool]:
        """Create or update an experiment; True when anything changed. While it runs, only
        what leaves the assignment alone may change (metrics, alpha, sample size, ramp)."""
        variants(self._deployments.get(spec.deployment).spec, spec)
        document = spec.to_document()
        now = utcnow()
        with self._db.write() as s:
            row = self._row(s, spec.name, missing_ok=True, lock=True)
            if row is None:
                state = ExperimentState(Phase.DRAFT)
                row = ExperimentRow(
                    name=spec.name,
                    deployment=spec.deployment,
                    revision=1,
                    spec=document,
                    state=state.to_json(),
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
                self._record(s, row, "apply", actor, "created")
                return _experiment(row), True
            if row.spec == document:
                return _experiment(row), False
            old = _experiment(row)
            if old.state.phase is not Phase.DRAFT and _assignment(old.spec) != _assignment(spec):
                raise ConflictError(
                    f"experiment {spec.name!r} is {old.state.phase.value}: its deployment, "
                    "control and unit are fixed once it started (apply a new experiment)"
                )
            state = old.state
            if state.phase is Phase.RUNNING and state.step >= len(spec.ramp):
                state = replace(state, step=len(spec.ramp) - 1)
            row.spec, row.deployment, row.state = document, spec.deployment, state.to_json()
            row.revision, row.updated_at = row.revision + 1, now
            self._record(s, row, "apply", actor, "spec changed")
            if state.phase is Phase.RUNNING:
                self._allocate(s, _experiment(row), actor, "experiment spec changed")
            return _experiment(row), True

    def get(self, name: str) -> Experiment:
        with self._db.read() as s:
            row = self._row(s, name)
            assert row is not None
            return _experiment(row)

    def experiments(self, deployment: str | None = None) -> list[Experiment]:
        query = select(ExperimentRow).order_by(ExperimentRow.name)
        if deployment is not None:
            query = query.where(ExperimentRow.deployment == deployment)
        with self._db.read() as s:
            return [_experiment(row) for row in s.scalars(query)]

    def history(self, name: str, limit: int = 100) -> list[ExperimentEvent]:
        """Newest first; also for an experiment deleted since."""
        with self._db.read() as s:
            rows = s.scalars(
                select(ExperimentEventRow)
                .where(ExperimentEventRow.experiment == name)
                .order_by(ExperimentEventRow.id.desc())
                .limit(max(1, min(limit, MAX_HISTORY)))
            ).all()
            if not rows:
                self._row(s, name)
            return [
                ExperimentEvent(r.id, r.experiment, r.at, r.actor, r.action, r.reason, r.state)
                for r in rows
            ]

    def start(self, name: str, *, actor: Actor | None = None, reason: str = "") -> Experiment:
        """Enrol the first ramp step's share of units; one experiment per deployment runs."""
        with self._db.write() as s:
            row = self._row(s, name, lock=True)
            assert row is not None
            experiment = _experiment(row)
            if experiment.state.phase is not Phase.DRAFT:
                raise ConflictError(
                    f"experiment {name!r} is {experiment.state.phase.value}; only a draft "
                    "starts (apply the experiment under a new name to run it again)"
                )
            deployment = self._deployments.get_in(s, experiment.spec.deployment).spec
            weights = {v: deployment.slot(v).weight for v in variants(deployment, experiment.spec)}
            control = control_of(deployment, experiment.spec)
            now = utcnow()
            state = ExperimentState(Phase.RUNNING, 0, now, now, control=control, weights=weights)
            self._change(s, row, state, "start", actor, reason or "started")
            self._allocate(s, _experiment(row), actor, f"experiment {name} started")
            return _experiment(row)

    def ramp(self, name: str, revision: int, *, actor: Actor, reason: str) -> Experiment | None:
        """The next ramp step, if the experiment is still at ``revision`` (the controller's
        view); None when it moved on meanwhile."""
        with self._db.write() as s:
            row = self._row(s, name, lock=True)
            assert row is not None
            experiment = _experiment(row)
            state = experiment.state
            if row.revision != revision or state.phase is not Phase.RUNNING:
                return None
            if state.step + 1 >= len(experiment.spec.ramp):
                return None
            moved = replace(state, step=state.step + 1, since=utcnow(), reason=reason)
            self._change(s, row, moved, "ramp", actor, reason)
            self._allocate(s, _experiment(row), actor, reason)
            return _experiment(row)

    def stop(
        self,
        name: str,
        *,
        actor: Actor | None = None,
        reason: str = "",
        revision: int | None = None,
    ) -> Experiment | None:
        """End the experiment: all traffic on the control. With ``revision`` (a guardrail's
        verdict), None when the experiment moved on meanwhile."""
        with self._db.write() as s:
            row = self._row(s, name, lock=True)
            assert row is not None
            if revision is not None and row.revision != revision:
                return None
            experiment = _experiment(row)
            _require_running(experiment, "stop")
            deployment = self._deployments.get_in(s, experiment.spec.deployment).spec
            control = control_of(deployment, experiment.spec)
            reason = reason or "stopped"
            ended = replace(experiment.state, phase=Phase.STOPPED, ended_at=utcnow(), reason=reason)
            self._change(s, row, ended, "stop", actor, reason)
            self._settle(s, experiment, control, actor, f"experiment {name} stopped: {reason}")
            return _experiment(row)

    def promote(
        self,
        name: str,
        variant: str,
        *,
        alias: str | None = None,
        actor: Actor | None = None,
        reason: str = "",
    ) -> Experiment:
        """Make ``variant`` the winner: the alias the control follows (or ``alias``) moves to
        the version the variant serves, and the variant takes all traffic."""
        experiment = self.get(name)
        _require_running(experiment, "promote")
        deployment = self._deployments.get(experiment.spec.deployment).spec
        if variant not in variants(deployment, experiment.spec):
            known = ", ".join(variants(deployment, experiment.spec))
            raise InvalidInputError(
                f"experiment {name!r} has no variant {variant!r} (variants: {known})",
                pointer="/variant",
            )
        winner = ModelAddress.parse(deployment.slot(variant).model)
        record = self._registry.resolve(winner)
        control = ModelAddress.parse(deployment.slot(control_of(deployment, experiment.spec)).model)
        alias = alias or control.alias
        moved = ""
        if alias is not None:
            if control.name != record.name and alias == control.alias:
                raise InvalidInputError(
                    f"the winner serves model {record.name!r}, the control {control.name!r}: "
                    "name the alias to move with --alias",
                    pointer="/alias",
                )
            self._registry.set_alias(record.name, alias, record.version, actor=actor)
            moved = f"; {record.name}@{alias} -> version {record.version}"
        reason = (reason or f"{variant} promoted") + moved
        with self._db.write() as s:
            row = self._row(s, name, lock=True)
            assert row is not None
            current = _experiment(row)
            _require_running(current, "promote")
            ended = replace(
                current.state,
                phase=Phase.CONCLUDED,
                ended_at=utcnow(),
                reason=reason,
                winner=variant,
            )
            self._change(s, row, ended, "promote", actor, reason)
            self._settle(s, current, variant, actor, f"experiment {name}: {reason}")
            return _experiment(row)

    def delete(self, name: str, *, actor: Actor | None = None) -> None:
        """Forget an experiment that does not run, with its exposures (history stays)."""
        with self._db.write() as s:
            row = self._row(s, name, lock=True)
            assert row is not None
            if ExperimentState.from_json(row.state).phase is Phase.RUNNING:
                raise ConflictError(f"experiment {name!r} runs; stop it first")
            self._record(s, row, "delete", actor, "deleted")
            s.execute(delete(ExposureRow).where(ExposureRow.experiment == name))
            s.execute(delete(ExperimentRow).where(ExperimentRow.name == name))

    def _allocate(
        self, s: Session, experiment: Experiment, actor: Actor | None, reason: str
    ) -> None:
        spec = experiment.spec
        deployment = self._deployments.get_in(s, spec.deployment).spec
        running = [
            other for other in self._running_on(s, spec.deployment) if other != experiment.name
        ]
        if running:
            raise ConflictError(
                f"experiment {running[0]!r} already runs on deployment {spec.deployment!r}"
            )
        allocation = Allocation(
            experiment.name,
            control_of(deployment, spec),
            experiment.share,
            experiment.state.step,
            spec.unit is Unit.REQUEST,
        )
        self._deployments.transition_in(
            s, spec.deployment, Action.EXPERIMENT, allocated(allocation), reason=reason, actor=actor
        )

    def _settle(
        self, s: Session, experiment: Experiment, slot: str, actor: Actor | None, reason: str
    ) -> None:
        self._deployments.transition_in(
            s,
            experiment.spec.deployment,
            Action.EXPERIMENT,
            settled_on(slot),
            reason=reason,
            actor=actor,
        )

    @staticmethod
    def _running_on(s: Session, deployment: str) -> list[str]:
        rows = s.scalars(select(ExperimentRow).where(ExperimentRow.deployment == deployment))
        return [
            row.name for row in rows if ExperimentState.from_json(row.state).phase is Phase.RUNNING
        ]

    def _change(
        self,
        s: Session,
        row: ExperimentRow,
        state: ExperimentState,
        action: str,
        actor: Actor | None,
        reason: str,
    ) -> None:
        row.state, row.revision, row.updated_at = state.to_json(), row.revision + 1, utcnow()
        self._record(s, row, action, actor, reason)

    @staticmethod
    def _record(
        s: Session, row: ExperimentRow, action: str, actor: Actor | None, reason: str
    ) -> None:
        actor = actor or Actor.local()
        s.add(
            ExperimentEventRow(
                experiment=row.name,
                at=utcnow(),
                actor=actor.name,
                action=action,
                reason=reason,
                state=row.state,
            )
        )
        after = None if action == "delete" else {"revision": row.revision, "state": row.state}
        append(s, actor, f"experiment.{action}", f"experiment:{row.name}", None, after)

    @staticmethod
    def _row(
        s: Session, name: str, *, missing_ok: bool = False, lock: bool = False
    ) -> ExperimentRow | None:
        return named_row(s, ExperimentRow, name, "experiment", missing_ok=missing_ok, lock=lock)


def variants(deployment: DeploymentSpec, spec: ExperimentSpec) -> list[str]:
    """The deployment's serving slots with traffic, which the experiment compares; a
    ConflictError when the deployment cannot carry the experiment."""
    if deployment.strategy is not Strategy.DIRECT:
        raise ConflictError(
            f"deployment {deployment.name!r} is {deployment.strategy.value}; an experiment "
            "needs a direct deployment, whose slots and weights are its variants and split"
        )
    names = [s.name for s in deployment.slots if s.role is not Role.SHADOW and s.weight > 0]
    if len(names) < 2:
        raise ConflictError(
            f"deployment {deployment.name!r} sends traffic to {len(names)} slot; an experiment "
            "needs at least two slots with a weight above 0"
        )
    control_of(deployment, spec, names)
    return names


def control_of(
    deployment: DeploymentSpec, spec: ExperimentSpec, names: list[str] | None = None
) -> str:
    control = spec.control or deployment.primary.name
    names = names or [s.name for s in deployment.slots if s.role is not Role.SHADOW]
    if control not in names:
        raise InvalidInputError(
            f"spec.control: deployment {deployment.name!r} has no serving slot {control!r} "
            f"(slots: {', '.join(names)})",
            pointer="/spec/control",
        )
    return control


def _assignment(spec: ExperimentSpec) -> tuple[object, ...]:
    """What decides which units meet which variant."""
    return (spec.deployment, spec.control, spec.unit)


def _require_running(experiment: Experiment, what: str) -> None:
    if experiment.state.phase is not Phase.RUNNING:
        raise ConflictError(
            f"cannot {what} experiment {experiment.name!r}: it is {experiment.state.phase.value}"
        )


def _experiment(row: ExperimentRow) -> Experiment:
    return Experiment(
        parse_document(row.spec),
        ExperimentState.from_json(row.state),
        row.revision,
        row.created_at,
        row.updated_at,
    )
