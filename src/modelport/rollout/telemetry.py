"""What replicas tell each other through the database: served samples, heartbeats, a lease.

Each replica writes, about once a second, one row per deployment slot it served (a delta of
its counters) and a heartbeat naming what each slot actually serves. The rollout controller
sums the samples of every replica over its window; ``deployments status`` reads the
heartbeats. Exactly one controller acts at a time: the holder of the lease.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from modelport.store.tables import LeaseRow, ReplicaRow, RolloutSampleRow, utcnow
from modelport.store.unit_of_work import Database

CONTROLLER_LEASE = "rollout-controller"


def replica_id() -> str:
    """This process, as other replicas and operators see it: host, pid and a random tag (pids
    repeat across containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


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
            session.execute(
                delete(LeaseRow).where(
                    LeaseRow.name == CONTROLLER_LEASE, LeaseRow.holder == self.replica
                )
            )

    def replicas(self, seen_within: timedelta) -> list[Replica]:
        with self._db.read() as session:
            rows = session.scalars(
                select(ReplicaRow)
                .where(ReplicaRow.seen_at >= utcnow() - seen_within)
                .order_by(ReplicaRow.started_at)
            )
            return [Replica(r.id, r.started_at, r.seen_at, r.serving) for r in rows]

    def hold_lease(self, ttl: timedelta, name: str = CONTROLLER_LEASE) -> bool:
        """Take or renew the lease; True while this replica holds it. A holder that stops
        renewing (crashed, cut off from the database) loses it after ``ttl``."""
        now = utcnow()
        try:
            with self._db.write() as session:
                row = session.scalars(
                    select(LeaseRow).where(LeaseRow.name == name).with_for_update()
                ).one_or_none()
                if row is None:
                    session.add(LeaseRow(name=name, holder=self.replica, expires_at=now + ttl))
                    return True
                if row.holder != self.replica and row.expires_at > now:
                    return False
                row.holder, row.expires_at = self.replica, now + ttl
                return True
        except IntegrityError:  # another replica created the lease at the same moment
            return False

    def prune(self, older_than: timedelta) -> None:
        """Drop samples no window can reach any more, and replicas long gone."""
        cutoff = utcnow() - older_than
        with self._db.write() as session:
            session.execute(delete(RolloutSampleRow).where(RolloutSampleRow.at < cutoff))
            session.execute(delete(ReplicaRow).where(ReplicaRow.seen_at < cutoff))
