"""What replicas tell each other through the database: served samples, heartbeats, a lease.

Each replica writes, about once a second, one row per deployment slot it served (a delta of
its counters) and a heartbeat naming what each slot actually serves. The rollout controller
sums the samples of every replica over its window; ``deployments status`` reads the
heartbeats. Exactly one controller acts at a time: the holder of the lease.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update

from modelport.store.leases import Leases
from modelport.store.tables import ReplicaRow, RolloutSampleRow, utcnow
from modelport.store.unit_of_work import Database

CONTROLLER_LEASE = "rollout-controller"


@dataclass(frozen=True, slots=True)
class Sample:
    deployment: str
    epoch: int
    slot: str
    window: dict[str, Any]
    """A :class:`~modelport.rollout.window.SlotWindow` as JSON."""


@dataclass(frozen=True, slots=True)
class Replica:
    id: str
    started_at: datetime
    seen_at: datetime
    serving: dict[str, Any]


class Telemetry:
    def __init__(self, database: Database, replica: str) -> None:
        self._db = database
        self.replica = replica
        self._leases = Leases(database, replica)

    def write_samples(self, samples: Iterable[Sample]) -> None:
        rows = [
            RolloutSampleRow(
                deployment=s.deployment,
                epoch=s.epoch,
                slot=s.slot,
                replica=self.replica,
                at=utcnow(),
                window=s.window,
            )
            for s in samples
        ]
        if rows:
            with self._db.write() as session:
                session.add_all(rows)

    def samples(
        self, deployment: str, epoch: int, since: datetime
    ) -> dict[str, list[dict[str, Any]]]:
        """Windows per slot written by any replica for this epoch since ``since``."""
        with self._db.read() as session:
            rows = session.execute(
                select(RolloutSampleRow.slot, RolloutSampleRow.window).where(
                    RolloutSampleRow.deployment == deployment,
                    RolloutSampleRow.epoch == epoch,
                    RolloutSampleRow.at >= since,
                )
            ).all()
            by_slot: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for slot, window in rows:
                by_slot[slot].append(window)
            return dict(by_slot)

    def heartbeat(self, serving: dict[str, Any]) -> None:
        now = utcnow()
        with self._db.write() as session:
            changed = session.execute(
                update(ReplicaRow)
                .where(ReplicaRow.id == self.replica)
                .values(seen_at=now, serving=serving)
            )
            if not changed.rowcount:  # type: ignore[attr-defined]
                session.add(
                    ReplicaRow(id=self.replica, started_at=now, seen_at=now, serving=serving)
                )

    def leave(self) -> None:
        """Forget this replica (graceful shutdown) and give up the lease if it holds it."""
        with self._db.write() as session:
            session.execute(delete(ReplicaRow).where(ReplicaRow.id == self.replica))
        self._leases.release(CONTROLLER_LEASE)

    def replicas(self, seen_within: timedelta) -> list[Replica]:
        with self._db.read() as session:
            rows = session.scalars(
                select(ReplicaRow)
                .where(ReplicaRow.seen_at >= utcnow() - seen_within)
                .order_by(ReplicaRow.started_at)
            )
            return [Replica(r.id, r.started_at, r.seen_at, r.serving) for r in rows]

    def hold_lease(self, ttl: timedelta) -> bool:
        """Take or renew the controller's lease; True while this replica holds it."""
        return self._leases.hold(CONTROLLER_LEASE, ttl)

    def prune(self, older_than: timedelta) -> None:
        """Drop samples no window can reach any more, and replicas long gone."""
        cutoff = utcnow() - older_than
        with self._db.write() as session:
            session.execute(delete(RolloutSampleRow).where(RolloutSampleRow.at < cutoff))
            session.execute(delete(ReplicaRow).where(ReplicaRow.seen_at < cutoff))
