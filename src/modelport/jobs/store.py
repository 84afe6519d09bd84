"""Jobs in the registry database: submitted, claimed by one worker, finished once.

A worker claims a queued job in one transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
SQLite's writers queue anyway), which records it as the job's worker and counts the attempt.
Every later change a worker makes (progress, the answer, an error) is conditional on the job
still being running *under that worker*: when a job was given to another worker because its
first one stopped reporting, the first one's late answer is discarded, so a job has exactly
one answer however often it ran.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session

from modelport.errors import ConflictError, JobNotFoundError
from modelport.jobs.model import FINISHED, Job, JobKind, JobState
from modelport.store.tables import JobPayloadRow, JobRow, utcnow
from modelport.store.unit_of_work import Database

INPUT, RESULT = "input", "result"
MAX_LISTED = 1000


@dataclass(frozen=True, slots=True)
class NewJob:
    kind: JobKind
    reference: str
    name: str
    format: str
    options: dict[str, Any]
    caller: str | None
    request_id: str
    body: bytes


class Beat(StrEnum):
    """What a running job's worker hears when it reports progress."""

    GOING = "going"
    CANCEL = "cancel"
    """Someone asked to cancel it: stop at the next piece."""
    LOST = "lost"
    """It is no longer this worker's (given to another after a silence, or cancelled)."""


class JobStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    def submit(self, new: NewJob) -> Job:
        with self._db.write() as s:
            return submitted(s, new)

    def get(self, job_id: str) -> Job:
        with self._db.read() as s:
            return _job(_row(s, job_id))

    def payload(self, job_id: str, part: str) -> bytes:
        """The job's request body (``input``) or its answer (``result``)."""
        with self._db.read() as s:
            row = s.get(JobPayloadRow, (job_id, part))
            if row is None:
                raise JobNotFoundError(f"job {job_id!r} has no {part}")
            return row.body

    def jobs(
        self,
        *,
        state: JobState | None = None,
        name: str | None = None,
        caller: str | None = None,
        limit: int = 100,
    ) -> list[Job]:
        """Newest first; every filter given narrows."""
        query = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id)
        if state is not None:
            query = query.where(JobRow.state == state.value)
        if name is not None:
            query = query.where(JobRow.name == name)
        if caller is not None:
            query = query.where(JobRow.caller == caller)
        with self._db.read() as s:
            rows = s.scalars(query.limit(max(1, min(limit, MAX_LISTED)))).all()
            return [_job(row) for row in rows]

    def claim(self, worker: str, names: Collection[str]) -> Job | None:
        """The oldest job due for one of ``names``, now running under ``worker``."""
        if not names:
            return None
        now = utcnow()
        due = (
            JobRow.state == JobState.QUEUED.value,
            JobRow.run_after <= now,
            JobRow.name.in_(sorted(names)),
        )
        if not self._any(due):
            return None
        query = (
            select(JobRow)
            .where(*due)
            .order_by(JobRow.run_after, JobRow.created_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        with self._db.write() as s:
            row = s.scalars(query).one_or_none()
            return None if row is None else _claimed(row, worker, now)

    def take(
        self, job_id: str, worker: str, lease: timedelta, *, max_attempts: int, ttl: timedelta
    ) -> Job | None:
        """Claim one job by id (a broker message named it): when it is due, or running under
        a worker silent for ``lease`` (the message came again because that worker died).
        None when there is nothing to do: it finished, expired, is not due yet, or is in a
        live worker's hands."""
        now = utcnow()
        with self._db.write() as s:
            # waits for a lock held a moment (a sweep, a cancel) rather than skip a due job
            row = s.scalars(select(JobRow).where(JobRow.id == job_id).with_for_update()).first()
            if row is None:
                return None
            if row.state == JobState.QUEUED.value and row.run_after <= now:
                return _claimed(row, worker, now)
            silent = row.heartbeat_at is not None and row.heartbeat_at < now - lease
            if row.state != JobState.RUNNING.value or not silent:
                return None
            if _ended(row, max_attempts, ttl):
                return None
            return _claimed(row, worker, now)

    def unclaimed(self, wait: timedelta) -> list[Job]:
        """Queued jobs due for ``wait`` that no worker claimed (their broker message was
        lost, or never sent): due again from now, so each is sent once per ``wait``."""
        now = utcnow()
        forgotten = (JobRow.state == JobState.QUEUED.value, JobRow.run_after < now - wait)
        if not self._any(forgotten):
            return []
        query = select(JobRow).where(*forgotten).limit(MAX_LISTED).with_for_update(skip_locked=True)
        with self._db.write() as s:
            rows = s.scalars(query).all()
            for row in rows:
                row.run_after = now
            return [_job(row) for row in rows]

    def heartbeat(self, job_id: str, worker: str, rows_done: int, rows_total: int | None) -> Beat:
        with self._db.write() as s:
            row = _running(s, job_id, worker)
            if row is None:
                return Beat.LOST
            row.heartbeat_at = utcnow()
            row.rows_done, row.rows_total = rows_done, rows_total
            return Beat.CANCEL if row.cancel_requested else Beat.GOING

    def succeed(
        self,
        job_id: str,
        worker: str,
        *,
        model: str,
        version: int,
        rows: int,
        body: bytes,
        media_type: str,
        ttl: timedelta,
    ) -> bool:
        """Record the answer; False (and nothing written) when the job is no longer this
        worker's."""
        with self._db.write() as s:
            row = _running(s, job_id, worker)
            if row is None:
                return False
            row.model, row.version = model, version
            row.result_type, row.result_size = media_type, len(body)
            row.rows_done = row.rows_total = rows
            _finish(row, JobState.SUCCEEDED, ttl)
            s.merge(JobPayloadRow(job_id=job_id, part=RESULT, body=body))
            return True

    def fail(self, job_id: str, worker: str, error: dict[str, Any], ttl: timedelta) -> bool:
        with self._db.write() as s:
            row = _running(s, job_id, worker)
            if row is None:
                return False
            row.error = error
            _finish(row, JobState.FAILED, ttl)
            return True

    def retry_later(
        self,
        job_id: str,
        worker: str,
        error: dict[str, Any],
        delay: timedelta,
        *,
        max_attempts: int,
        ttl: timedelta,
    ) -> JobState | None:
        """A passing failure: queued again after ``delay``, or failed once ``max_attempts``
        runs are spent. None when the job is no longer this worker's."""
        with self._db.write() as s:
            row = _running(s, job_id, worker)
            if row is None:
                return None
            row.error = error
            if row.attempts >= max_attempts:
                _finish(row, JobState.FAILED, ttl)
            else:
                _queue(row, utcnow() + delay)
            return JobState(row.state)

    def release(self, job_id: str, worker: str, ttl: timedelta) -> bool:
        """Give a job back untouched (its worker is stopping): queued again at once, and the
        run does not count as an attempt."""
        with self._db.write() as s:
            row = _running(s, job_id, worker)
            if row is None:
                return False
            row.attempts -= 1
            if row.cancel_requested:
                _finish(row, JobState.CANCELLED, ttl)
            else:
                _queue(row, utcnow())
            return True

    def cancel(self, job_id: str, *, ttl: timedelta) -> Job:
        """A queued job is cancelled at once; a running one is asked to stop at its next
        piece; a finished one cannot be."""
        with self._db.write() as s:
            row = _row(s, job_id, lock=True)
            state = JobState(row.state)
            if state in FINISHED:
                raise ConflictError(f"job {job_id} has already {_past(state)}")
            if state is JobState.QUEUED:
                _finish(row, JobState.CANCELLED, ttl)
            else:
                row.cancel_requested = True
            return _job(row)

    def stopped(self, job_id: str, worker: str, ttl: timedelta) -> bool:
        """A running job stopped because it was cancelled."""
        with self._db.write() as s:
            row = _running(s, job_id, worker)
            if row is None:
                return False
            _finish(row, JobState.CANCELLED, ttl)
            return True

    def recover(self, lease: timedelta, *, max_attempts: int, ttl: timedelta) -> list[Job]:
        """Running jobs whose worker has been silent for ``lease`` (killed, cut off): queued
        again, or failed once their attempts are spent; as they are now."""
        silent = (JobRow.state == JobState.RUNNING.value, JobRow.heartbeat_at < utcnow() - lease)
        if not self._any(silent):
            return []
        query = select(JobRow).where(*silent).with_for_update(skip_locked=True)
        with self._db.write() as s:
            rows = s.scalars(query).all()
            for row in rows:
                if not _ended(row, max_attempts, ttl):
                    _queue(row, utcnow())
            return [_job(row) for row in rows]

    def _any(self, conditions: tuple[ColumnElement[bool], ...]) -> bool:
        """Whether a job matches, read without the write lock: every worker asks every
        second, and on SQLite a write transaction, even an empty one, holds off every other
        writer (the prediction log's among them)."""
        with self._db.read() as s:
            return s.scalars(select(JobRow.id).where(*conditions).limit(1)).first() is not None

    def purge(self) -> int:
        """Delete finished jobs past their time to live, with their payloads."""
        past = (JobRow.expires_at < utcnow(),)
        if not self._any(past):
            return 0
        with self._db.write() as s:
            expired = select(JobRow.id).where(*past).limit(MAX_LISTED)
            ids = list(s.scalars(expired))
            if ids:
                s.execute(delete(JobPayloadRow).where(JobPayloadRow.job_id.in_(ids)))
                s.execute(delete(JobRow).where(JobRow.id.in_(ids)))
            return len(ids)


def _row(s: Session, job_id: str, *, lock: bool = False) -> JobRow:
    query = select(JobRow).where(JobRow.id == job_id)
    row = s.scalars(query.with_for_update() if lock else query).one_or_none()
    if row is None:
        raise JobNotFoundError(f"job {job_id!r} not found (finished jobs expire)")
    return row


def _running(s: Session, job_id: str, worker: str) -> JobRow | None:
    row = s.scalars(select(JobRow).where(JobRow.id == job_id).with_for_update()).one_or_none()
    if row is None or row.state != JobState.RUNNING.value or row.worker != worker:
        return None
    return row


def _claimed(row: JobRow, worker: str, now: datetime) -> Job:
    row.state, row.worker = JobState.RUNNING.value, worker
    row.attempts += 1
    row.started_at = row.heartbeat_at = now
    return _job(row)


def _ended(row: JobRow, max_attempts: int, ttl: timedelta) -> bool:
    """A silent worker's job ends here when it was cancelled meanwhile or its attempts are
    spent; True when it did."""
    if row.cancel_requested:
        _finish(row, JobState.CANCELLED, ttl)
    elif row.attempts >= max_attempts:
        row.error = {"code": "worker_lost", "detail": f"worker {row.worker} stopped reporting"}
        _finish(row, JobState.FAILED, ttl)
    else:
        return False
    return True


def _queue(row: JobRow, run_after: datetime) -> None:
    row.state, row.worker, row.run_after = JobState.QUEUED.value, None, run_after
    row.heartbeat_at = None


def _finish(row: JobRow, state: JobState, ttl: timedelta) -> None:
    now = utcnow()
    row.state, row.finished_at, row.expires_at = state.value, now, now + ttl
    row.heartbeat_at = None


def _past(state: JobState) -> str:
    return {JobState.SUCCEEDED: "succeeded", JobState.FAILED: "failed"}.get(state, "been cancelled")


def _job(row: JobRow) -> Job:
    return Job(
        id=row.id,
        kind=JobKind(row.kind),
        reference=row.reference,
        name=row.name,
        format=row.format,
        options=dict(row.options),
        state=JobState(row.state),
        caller=row.caller,
        request_id=row.request_id,
        rows_total=row.rows_total,
        rows_done=row.rows_done,
        attempts=row.attempts,
        run_after=row.run_after,
        worker=row.worker,
        heartbeat_at=row.heartbeat_at,
        cancel_requested=row.cancel_requested,
        model=row.model,
        version=row.version,
        error=row.error,
        result_type=row.result_type,
        result_size=row.result_size,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        expires_at=row.expires_at,
    )


def submitted(s: Session, new: NewJob) -> Job:
    """Add a queued job in the session's transaction (a schedule queues one as it fires)."""
    now = utcnow()
    row = JobRow(
        id=secrets.token_hex(16),
        kind=new.kind.value,
        reference=new.reference,
        name=new.name,
        format=new.format,
        options=new.options,
        state=JobState.QUEUED.value,
        caller=new.caller,
        request_id=new.request_id,
        rows_done=0,
        attempts=0,
        run_after=now,
        cancel_requested=False,
        created_at=now,
    )
    s.add(row)
    s.flush()
    s.add(JobPayloadRow(job_id=row.id, part=INPUT, body=new.body))
    return _job(row)
