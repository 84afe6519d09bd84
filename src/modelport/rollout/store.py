"""Deployments in the registry database: spec, rollout state, and the history of both.

Every change (an ``apply``, a step of the controller, an operator's pause or rollback) is one
write transaction that bumps the deployment's ``revision``, appends a history entry with its
actor and reason, and records the change in the audit log. Replicas poll the revisions
(:meth:`DeploymentStore.revisions`, one small query) to converge on a change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from modelport.errors import ConflictError, NotFoundError
from modelport.registry import ModelAddress, Registry
from modelport.registry.audit import Actor, append
from modelport.rollout.spec import DeploymentSpec, parse_document
from modelport.rollout.state import Action, RolloutState, Transition, initial, reapplied
from modelport.store.tables import DeploymentEventRow, DeploymentRow, utcnow
from modelport.store.unit_of_work import Database, named_row

MAX_HISTORY = 1000


@dataclass(frozen=True, slots=True)
class Deployment:
    spec: DeploymentSpec
    state: RolloutState
    revision: int
    created_at: datetime
    updated_at: datetime

    @property
    def name(self) -> str:
        return self.spec.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "revision": self.revision,
            "spec": self.spec.to_document(),
            "state": self.state.to_json(),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class DeploymentEvent:
    id: int
    deployment: str
    revision: int
    at: datetime
    actor: str
    action: str
    reason: str
    state: dict[str, Any]
    spec: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "deployment": self.deployment,
            "revision": self.revision,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "reason": self.reason,
            "state": self.state,
            "spec": self.spec,
        }


class DeploymentStore:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._db: Database = registry.database

    def apply(self, spec: DeploymentSpec, *, actor: Actor | None = None) -> tuple[Deployment, bool]:
        """Create or update a deployment; True when anything changed (re-applying the same
        spec is a no-op, as with ``kubectl apply``)."""
        self._check_models(spec)
        document = spec.to_document()
        now = utcnow()
        with self._db.write() as s:
            row = self._row(s, spec.name, missing_ok=True)
            if row is None:
                state = initial(spec, now)
                row = DeploymentRow(
                    name=spec.name,
                    revision=1,
                    spec=document,
                    state=state.to_json(),
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
                before = None
            elif row.spec == document:
                return _deployment(row), False
            else:
                before = _facts(row)
                state = reapplied(spec, parse_document(row.spec), _state(row), now)
                if state != _state(row):
                    _refuse_during_experiment(_state(row), "change the traffic of")
                row.spec, row.state = document, state.to_json()
                row.revision, row.updated_at = row.revision + 1, now
            reason = "created" if before is None else "spec changed"
            self._record(s, row, Action.APPLY, actor, reason, with_spec=True, before=before)
            return _deployment(row), True

    def get(self, name: str) -> Deployment:
        with self._db.read() as s:
            row = self._row(s, name)
            assert row is not None
            return _deployment(row)

    def get_in(self, s: Session, name: str) -> Deployment:
        """``get`` inside a caller's transaction."""
        row = self._row(s, name)
        assert row is not None
        return _deployment(row)

    def deployments(self) -> list[Deployment]:
        with self._db.read() as s:
            rows = s.scalars(select(DeploymentRow).order_by(DeploymentRow.name))
            return [_deployment(row) for row in rows]

    def revisions(self) -> dict[str, int]:
        """Every deployment's revision: what replicas poll to notice a change."""
        with self._db.read() as s:
            query = select(DeploymentRow.name, DeploymentRow.revision)
            return {name: revision for name, revision in s.execute(query).all()}

    def history(self, name: str, limit: int = 100) -> list[DeploymentEvent]:
        """Newest first; also for a deployment deleted since."""
        with self._db.read() as s:
            rows = s.scalars(
                select(DeploymentEventRow)
                .where(DeploymentEventRow.deployment == name)
                .order_by(DeploymentEventRow.id.desc())
                .limit(max(1, min(limit, MAX_HISTORY)))
            ).all()
            if not rows:
                self._row(s, name)  # 404 for a name that never existed
            return [_event(row) for row in rows]

    def transition(
        self,
        name: str,
        action: Action,
        change: Transition,
        *,
        reason: str,
        actor: Actor | None = None,
        epoch: int | None = None,
    ) -> Deployment | None:
        """Apply one state transition and record it. With ``epoch`` (the controller's view),
        nothing happens and None is returned if the state moved on meanwhile: an operator's
        pause or a new spec wins over a decision taken on older figures."""
        with self._db.write() as s:
            return self.transition_in(
                s, name, action, change, reason=reason, actor=actor, epoch=epoch
            )

    def transition_in(
        self,
        s: Session,
        name: str,
        action: Action,
        change: Transition,
        *,
        reason: str,
        actor: Actor | None = None,
        epoch: int | None = None,
    ) -> Deployment | None:
        """``transition`` inside a caller's transaction (an experiment changes its own row
        and the deployment's traffic at once)."""
        row = self._row(s, name, lock=True)
        assert row is not None
        state = _state(row)
        if epoch is not None and state.epoch != epoch:
            return None
        before = _facts(row)
        row.state = change(parse_document(row.spec), state, utcnow(), reason).to_json()
        row.revision, row.updated_at = row.revision + 1, utcnow()
        self._record(s, row, action, actor, reason, with_spec=False, before=before)
        return _deployment(row)

    def delete(self, name: str, *, actor: Actor | None = None) -> None:
        with self._db.write() as s:
            row = self._row(s, name, lock=True)
            assert row is not None
            _refuse_during_experiment(_state(row), "delete")
            before = _facts(row)
            row.revision += 1
            self._record(s, row, Action.DELETE, actor, "deleted", with_spec=False, before=before)
            s.execute(delete(DeploymentRow).where(DeploymentRow.name == name))

    def _check_models(self, spec: DeploymentSpec) -> None:
        """Every slot must name a model the registry can resolve now: a typo is caught at
        apply, not when the first request arrives."""
        for index, slot in enumerate(spec.slots):
            try:
                self._registry.resolve(ModelAddress.parse(slot.model))
            except NotFoundError as exc:
                raise type(exc)(f"spec.slots[{index}].model: {exc.detail}") from exc

    def _record(
        self,
        s: Session,
        row: DeploymentRow,
        action: Action,
        actor: Actor | None,
        reason: str,
        *,
        with_spec: bool,
        before: dict[str, Any] | None,
    ) -> None:
        actor = actor or Actor.local()
        s.add(
            DeploymentEventRow(
                deployment=row.name,
                revision=row.revision,
                at=row.updated_at,
                actor=actor.name,
                action=action.value,
                reason=reason,
                spec=row.spec if with_spec else None,
                state=row.state,
            )
        )
        after = None if action is Action.DELETE else _facts(row)
        append(s, actor, f"deployment.{action.value}", f"deployment:{row.name}", before, after)

    @staticmethod
    def _row(
        s: Session, name: str, *, missing_ok: bool = False, lock: bool = False
    ) -> DeploymentRow | None:
        return named_row(s, DeploymentRow, name, "deployment", missing_ok=missing_ok, lock=lock)


def _refuse_during_experiment(state: RolloutState, what: str) -> None:
    """The slots are an experiment's variants while it runs: changing them would mix units
    served by different models into one variant."""
    if state.experiment is not None:
        raise ConflictError(
            f"experiment {state.experiment.experiment!r} runs on this deployment; "
            f"stop it before you {what} the deployment"
        )


def _state(row: DeploymentRow) -> RolloutState:
    return RolloutState.from_json(row.state)


def _deployment(row: DeploymentRow) -> Deployment:
    return Deployment(
        parse_document(row.spec), _state(row), row.revision, row.created_at, row.updated_at
    )


def _facts(row: DeploymentRow) -> dict[str, Any]:
    return {"revision": row.revision, "spec": row.spec, "state": row.state}


def _event(row: DeploymentEventRow) -> DeploymentEvent:
    return DeploymentEvent(
        row.id,
        row.deployment,
        row.revision,
        row.at,
        row.actor,
        row.action,
        row.reason,
        row.state,
        row.spec,
    )
