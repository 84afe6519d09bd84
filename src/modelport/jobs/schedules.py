"""Batch runs on a cron schedule, kept in the registry database.

Every server and every ``modelport worker`` looks for due schedules; the first to find one
moves it to its next time and queues its batch job in one transaction, conditional on the
schedule still being due at the time it read, so one time of a schedule queues one job
however many processes look. A schedule due while nothing ran (every process down, say) is
not dropped: the first look afterwards queues one run for the missed times together (catch
up once), then the schedule goes on from the present.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from sqlalchemy import select, update

from modelport.errors import ConflictError, InvalidInputError, NotFoundError
from modelport.inference.background import Repeated
from modelport.jobs.model import Job, JobKind
from modelport.jobs.store import NewJob, submitted
from modelport.registry import ModelAddress
from modelport.store.tables import ScheduleRow, utcnow
from modelport.store.unit_of_work import Database

log = logging.getLogger("modelport.jobs")

SCHEDULE_POLL_S = 10.0
"""How often each process looks for due schedules: cron counts in minutes."""


@dataclass(frozen=True, slots=True)
class Schedule:
    name: str
    model: str
    cron: str
    timezone: str
    options: dict[str, Any]
    enabled: bool
    next_run_at: datetime
    last_run_at: datetime | None
    last_job_id: str | None
    created_by: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "cron": self.cron,
            "timezone": self.timezone,
            "enabled": self.enabled,
            "next_run_at": self.next_run_at.isoformat(),
            "last_run_at": None if self.last_run_at is None else self.last_run_at.isoformat(),
            "last_job_id": self.last_job_id,
            "batch": self.options,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
        }


def next_time(cron: str, timezone: str, after: datetime) -> datetime:
    """The first time ``cron`` names after ``after``, read in ``timezone``."""
    try:
        zone: tzinfo = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInputError(f"unknown time zone {timezone!r}", pointer="/timezone") from exc
    try:
        return next(CronSim(cron, after.astimezone(zone)))
    except CronSimError as exc:
        raise InvalidInputError(f"not a cron expression {cron!r}: {exc}", pointer="/cron") from exc


def output_for(output: str, due: datetime) -> str:
    """A run's output folder: ``{date}`` and ``{time}`` become the time the run was due."""
    return output.replace("{date}", due.strftime("%Y-%m-%d")).replace(
        "{time}", due.strftime("%Y%m%dT%H%M")
    )


class ScheduleStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    def add(
        self,
        name: str,
        model: str,
        cron: str,
        options: dict[str, Any],
        *,
        timezone: str = "UTC",
        created_by: str,
        now: datetime | None = None,
    ) -> Schedule:
        """``now``: when the schedule starts counting (the present unless given)."""
        ModelAddress.parse(model)
        first = next_time(cron, timezone, now or utcnow())
        row = ScheduleRow(
            name=name,
            model=model,
            cron=cron,
            timezone=timezone,
            options=options,
            enabled=True,
            next_run_at=first,
            created_by=created_by,
            created_at=utcnow(),
        )
        with self._db.write() as s:
            if s.get(ScheduleRow, name) is not None:
                raise ConflictError(f"schedule {name!r} exists; remove it first")
            s.add(row)
            s.flush()
            return _schedule(row)

    def schedules(self) -> list[Schedule]:
        with self._db.read() as s:
            return [_schedule(r) for r in s.scalars(select(ScheduleRow).order_by(ScheduleRow.name))]

    def remove(self, name: str) -> None:
        with self._db.write() as s:
            row = s.get(ScheduleRow, name)
            if row is None:
                raise NotFoundError(f"no schedule {name!r}")
            s.delete(row)

    def set_enabled(self, name: str, enabled: bool) -> Schedule:
        """Pause or resume; a resumed schedule goes on from now (paused times are skipped)."""
        with self._db.write() as s:
            row = s.get(ScheduleRow, name)
            if row is None:
                raise NotFoundError(f"no schedule {name!r}")
            if enabled and not row.enabled:
                row.next_run_at = next_time(row.cron, row.timezone, utcnow())
            row.enabled = enabled
            return _schedule(row)

    def fire_due(self) -> list[Job]:
        """Queue one batch job for each schedule due now; the jobs queued."""
        now = utcnow()
        due = (ScheduleRow.enabled.is_(True), ScheduleRow.next_run_at <= now)
        with self._db.read() as s:
            rows = [_schedule(r) for r in s.scalars(select(ScheduleRow).where(*due))]
        return [job for schedule in rows if (job := self._fire(schedule, now)) is not None]

    def _fire(self, schedule: Schedule, now: datetime) -> Job | None:
        upcoming = next_time(schedule.cron, schedule.timezone, now)
        moved = (
            update(ScheduleRow)
            .where(
                ScheduleRow.name == schedule.name,
                ScheduleRow.next_run_at == schedule.next_run_at,
                ScheduleRow.enabled.is_(True),
            )
            .values(next_run_at=upcoming, last_run_at=schedule.next_run_at)
        )
        with self._db.write() as s:
            if s.execute(moved).rowcount != 1:  # type: ignore[attr-defined]
                return None  # another process fired this time, or it was paused or removed
            job = submitted(s, _batch_job(schedule))
            s.execute(
                update(ScheduleRow)
                .where(ScheduleRow.name == schedule.name)
                .values(last_job_id=job.id)
            )
            return job


def _batch_job(schedule: Schedule) -> NewJob:
    options = dict(schedule.options)
    options["output"] = output_for(options["output"], schedule.next_run_at)
    return NewJob(
        JobKind.BATCH,
        schedule.model,
        ModelAddress.parse(schedule.model).name,
        options.get("format", "parquet"),
        options,
        None,
        f"schedule:{schedule.name}:{schedule.next_run_at:%Y%m%dT%H%M}",
        b"",
    )


def _schedule(row: ScheduleRow) -> Schedule:
    return Schedule(
        row.name,
        row.model,
        row.cron,
        row.timezone,
        dict(row.options),
        row.enabled,
        row.next_run_at,
        row.last_run_at,
        row.last_job_id,
        row.created_by,
        row.created_at,
    )


class Scheduler:
    """Fires due schedules every ``every_s`` in the background, handing each job on to
    ``queued`` (the process's dispatch)."""

    def __init__(
        self,
        store: ScheduleStore,
        queued: Callable[[Job], Awaitable[None]],
        every_s: float = SCHEDULE_POLL_S,
    ) -> None:
        self._store = store
        self._queued = queued
        self._every_s = every_s
        self._repeated = Repeated("firing schedules", self._step, log)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._repeated.forever(self._every_s))
        self._repeated.wake()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _step(self) -> None:
        for job in await asyncio.to_thread(self._store.fire_due):
            log.info("queued batch job %s (%s)", job.id, job.request_id)
            await self._queued(job)
