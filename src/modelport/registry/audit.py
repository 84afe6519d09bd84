"""The audit log: who changed what in the registry, when, from where, before and after.

Each change writes one entry with :func:`append`, inside the transaction of the change itself,
so a change that fails leaves no entry and no entry describes a change that did not happen.
Entries form a hash chain (``hash = sha256(prev_hash + canonical JSON of the entry)``) that
:meth:`AuditLog.verify` walks; the database refuses UPDATE and DELETE on the table (triggers
of migration 0003). Appends lock the one ``audit_head`` row, so concurrent writers on
PostgreSQL queue there and the chain never forks (SQLite writers already queue at BEGIN).
"""

from __future__ import annotations

import getpass
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from modelport.errors import InvalidInputError
from modelport.store.tables import AuditHeadRow, AuditRow, utcnow
from modelport.store.unit_of_work import Database

HEAD_ID = 1
GENESIS = "0" * 64
"""``prev_hash`` of the first entry."""
MAX_PAGE = 1000
_VERIFY_BATCH = 500


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change: ``key:<id>`` over HTTP with an API key, ``local:<user>`` on this
    machine (the CLI, the SDK), ``anonymous`` otherwise."""

    name: str
    key_id: str | None = None
    request_id: str | None = None
    client: str | None = None

    @classmethod
    def local(cls) -> Actor:
        """The operating-system user running this process."""
        try:
            user = getpass.getuser()
        except (OSError, KeyError, ImportError):  # no login name, no passwd entry
            user = "unknown"
        return cls(f"local:{user}")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    key_id: str | None
    action: str
    target: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    request_id: str | None
    client: str | None
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "key_id": self.key_id,
            "action": self.action,
            "target": self.target,
            "before": dict(self.before) if self.before is not None else None,
            "after": dict(self.after) if self.after is not None else None,
            "request_id": self.request_id,
            "client": self.client,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What :meth:`AuditLog.verify` found: ``ok``, or the first entry that breaks the chain."""

    ok: bool
    count: int
    head: str
    broken_id: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "count": self.count,
            "head": self.head,
            "broken_id": self.broken_id,
            "reason": self.reason,
        }


def append(
    session: Session,
    actor: Actor | None,
    action: str,
    target: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> None:
    """Record one change in the caller's write transaction; call it last in that transaction.

    Last, because the head row stays locked until commit: taking no other lock after it keeps
    writers from deadlocking on PostgreSQL.
    """
    actor = actor or Actor.local()
    head = session.scalars(
        select(AuditHeadRow)
        .where(AuditHeadRow.id == HEAD_ID)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    row = AuditRow(
        id=head.last_id + 1,  # assigned here, under the head lock, so that it is hashed too
        at=utcnow(),
        actor=actor.name,
        key_id=actor.key_id,
        action=action,
        target=target,
        before=_plain(before),
        after=_plain(after),
        request_id=actor.request_id,
        client=actor.client,
        prev_hash=head.hash,
    )
    row.hash = _digest(row)
    session.add(row)
    head.last_id, head.hash = row.id, row.hash
    session.flush()


class AuditLog:
    """Reading and checking the audit log; writes happen only through :func:`append`."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def entries(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        limit: int = 100,
        after_id: int | None = None,
    ) -> list[AuditEntry]:
        """Entries oldest first; ``after_id`` continues from the last id of the previous page.

        ``target`` names one thing (``iris/3``, ``iris@production``) or a model (``iris``),
        which matches everything about that model.
        """
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInputError(f"limit must be 1 to {MAX_PAGE}, got {limit}", pointer="/limit")
        query = _filtered(select(AuditRow), since, until, actor, action, target)
        if after_id is not None:
            query = query.where(AuditRow.id > after_id)
        with self.database.read() as s:
            rows = s.scalars(query.order_by(AuditRow.id).limit(limit)).all()
            return [_entry(row) for row in rows]

    def verify(self) -> VerifyResult:
        """Walk the chain from the first entry to the head, recomputing every hash."""
        with self.database.read() as s:
            head = s.scalars(select(AuditHeadRow).where(AuditHeadRow.id == HEAD_ID)).one()
            last_id, head_hash = head.last_id, head.hash
            previous, count, seen = GENESIS, 0, 0
            while True:
                # entries past the head read above were appended since, by later transactions
                rows = s.scalars(
                    select(AuditRow)
                    .where(AuditRow.id > seen, AuditRow.id <= last_id)
                    .order_by(AuditRow.id)
                    .limit(_VERIFY_BATCH)
                ).all()
                for row in rows:
                    problem = _check(row, previous)
                    if problem:
                        return VerifyResult(False, count, head_hash, row.id, problem)
                    previous, count, seen = row.hash, count + 1, row.id
                if len(rows) < _VERIFY_BATCH:
                    break
        if previous != head_hash:
            reason = f"the log ends at entry {seen} but its head records entry {last_id}"
            return VerifyResult(False, count, head_hash, seen + 1, reason)
        return VerifyResult(True, count, head_hash)


def _filtered(
    query: Select[AuditRow],
    since: datetime | None,
    until: datetime | None,
    actor: str | None,
    action: str | None,
    target: str | None,
) -> Select[AuditRow]:
    if since is not None:
        query = query.where(AuditRow.at >= since)
    if until is not None:
        query = query.where(AuditRow.at <= until)
    if actor is not None:
        query = query.where(AuditRow.actor == actor)
    if action is not None:
        query = query.where(AuditRow.action == action)
    if target is not None:
        # literal prefixes: a model name may hold LIKE's wildcard "_"
        query = query.where(
            or_(
                AuditRow.target == target,
                AuditRow.target.startswith(f"{target}/", autoescape=True),
                AuditRow.target.startswith(f"{target}@", autoescape=True),
            )
        )
    return query


def _check(row: AuditRow, previous: str) -> str | None:
    if row.prev_hash != previous:
        return f"entry {row.id} does not follow the entry before it (an entry is missing)"
    if _digest(row) != row.hash:
        return f"entry {row.id} was changed after it was written (its hash does not match)"
    return None


def _digest(row: AuditRow) -> str:
    """sha256 of ``prev_hash`` then the canonical JSON (sorted keys) of every other field."""
    fields = {
        "id": row.id,
        "at": row.at.astimezone(UTC).isoformat(),
        "actor": row.actor,
        "key_id": row.key_id,
        "action": row.action,
        "target": row.target,
        "before": row.before,
        "after": row.after,
        "request_id": row.request_id,
        "client": row.client,
        "prev_hash": row.prev_hash,
    }
    canonical = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(row.prev_hash.encode() + canonical).hexdigest()


def _plain(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``value`` as it will read back from a JSON column, so that the hash written now is
    the hash recomputed later."""
    if value is None:
        return None
    plain: dict[str, Any] = orjson.loads(orjson.dumps(value))
    return plain


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        key_id=row.key_id,
        action=row.action,
        target=row.target,
        before=row.before,
        after=row.after,
        request_id=row.request_id,
        client=row.client,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )
