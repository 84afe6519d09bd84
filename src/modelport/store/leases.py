"""Named leases in the database: the one process holding a lease does a job every replica
could do (step rollouts, compute drift), and another takes over when it stops renewing."""

from __future__ import annotations

import os
import secrets
import socket
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from modelport.store.tables import LeaseRow, utcnow
from modelport.store.unit_of_work import Database


def replica_id() -> str:
    """This process, as other replicas and operators see it: host, pid and a random tag (pids
    repeat across containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Leases:
    def __init__(self, database: Database, holder: str) -> None:
        self._db = database
        self.holder = holder

    def hold(self, name: str, ttl: timedelta) -> bool:
        """Take or renew the lease; True while this process holds it. A holder that stops
        renewing (crashed, cut off from the database) loses it after ``ttl``."""
        now = utcnow()
        try:
            with self._db.write() as session:
                row = session.scalars(
                    select(LeaseRow).where(LeaseRow.name == name).with_for_update()
                ).one_or_none()
                if row is None:
                    session.add(LeaseRow(name=name, holder=self.holder, expires_at=now + ttl))
                    return True
                if row.holder != self.holder and row.expires_at > now:
                    return False
                row.holder, row.expires_at = self.holder, now + ttl
                return True
        except IntegrityError:  # another process created the lease at the same moment
            return False

    def release(self, name: str) -> None:
        """Give the lease up at once (graceful stop), if this process holds it."""
        with self._db.write() as session:
            session.execute(
                delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == self.holder)
            )
