"""One run of one claimed job, whichever worker claimed it: the in-process runner of a server
(:mod:`modelport.jobs.runner`) or a Celery worker (:mod:`modelport.jobs.worker`).

A job is one request to the inference service (so it is metered, logged and drift-watched
like any other, under its job id), predicted ``piece_rows`` at a time. While it runs it
reports progress to the database every second or so; a worker that stops reporting for
``job_lease_s`` (killed, cut off) loses the job to whichever worker looks next. How the run
ended is written only while the job is still this worker's, so a job has one answer however
often it ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson

from modelport.config import Settings
from modelport.errors import (
    ConfigurationError,
    JobCancelledError,
    ModelNotReadyError,
    ModelportError,
    QueueFullError,
    StorageUnavailableError,
)
from modelport.inference.context import InferenceContext, Transport
from modelport.inference.service import InferenceService
from modelport.jobs.formats import JobRequest
from modelport.jobs.model import Job, JobKind, JobState
from modelport.jobs.store import INPUT, Beat, JobStore
from modelport.logs import current_request
from modelport.registry.records import VersionRecord

log = logging.getLogger("modelport.jobs")

PASSING = (StorageUnavailableError, ModelNotReadyError, QueueFullError)
"""Failures a later run may not meet: the job is queued again (with backoff)."""
RETRY_MAX_S = 60.0
BEAT_MAX_S = 1.0
RESULT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    workers: int
    poll_s: float
    lease: timedelta
    piece_rows: int
    max_attempts: int
    ttl: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> RunnerOptions:
        return cls(
            settings.job_workers,
            settings.job_poll_s,
            timedelta(seconds=settings.job_lease_s),
            settings.job_piece_rows,
            settings.job_max_attempts,
            timedelta(seconds=settings.job_result_ttl_s),
        )

    @property
    def beat_s(self) -> float:
        """How often a running job reports: well inside its lease, at most every second."""
        return min(self.lease.total_seconds() / 3, BEAT_MAX_S)


@dataclass(frozen=True, slots=True)
class Requeued:
    """The run ended with the job queued again: due after ``delay``."""

    delay: timedelta


class Execution:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        service: InferenceService,
        options: RunnerOptions,
        worker: str,
    ) -> None:
        self._settings = settings
        self._store = store
        self._service = service
        self.options = options
        self.worker = worker

    async def run(self, job: Job) -> Requeued | None:
        """Run a job this worker claimed and record how it ended; when the run is cancelled
        (the worker is stopping), the job goes back to the queue untouched before the
        cancellation goes on."""
        ctx = InferenceContext(job.id, Transport.JOB, caller=job.caller, admitted=True)
        token = current_request.set(ctx.log_ids())
        progress = Progress(self._store, job.id, self.worker, self.options)
        try:
            log.info("job %s: running %s (attempt %d)", job.id, job.reference, job.attempts)
            return await self._attempt(job, ctx, progress)
        except asyncio.CancelledError:
            await self._settle(self._store.release, job.id, self.worker, self.options.ttl)
            log.info("job %s: given back to the queue (this worker is stopping)", job.id)
            raise
        finally:
            progress.close()
            current_request.reset(token)

    async def _attempt(
        self, job: Job, ctx: InferenceContext, progress: Progress
    ) -> Requeued | None:
        store, worker, ttl = self._store, self.worker, self.options.ttl
        try:
            if job.kind is JobKind.BATCH:
                record, result = await self._batch(job, progress)
            else:
                record, result = await self._predict(job, ctx, progress)
        except JobCancelledError:
            if await self._settle(store.stopped, job.id, worker, ttl):
                log.info("job %s: cancelled", job.id)
        except PASSING as exc:
            return await self._later(job, exc)
        except ModelportError as exc:
            await self._settle(store.fail, job.id, worker, _problem(exc, job.id), ttl)
            log.info("job %s: failed: %s", job.id, exc.detail)
        except Exception as exc:
            log.exception("job %s: unexpected error", job.id)
            problem = _problem(ModelportError(f"unexpected error: {type(exc).__name__}"), job.id)
            await self._settle(store.fail, job.id, worker, problem, ttl)
        else:
            written = await self._settle(
                store.succeed,
                job.id,
                worker,
                model=record.name,
                version=record.version,
                rows=progress.rows_done,
                body=result,
                media_type=RESULT_TYPE,
                ttl=ttl,
            )
            if written:
                log.info("job %s: succeeded (%s)", job.id, record.address)
            else:
                log.warning("job %s: answer discarded; another worker has the job", job.id)
        return None

    async def _predict(
        self, job: Job, ctx: InferenceContext, progress: Progress
    ) -> tuple[VersionRecord, bytes]:
        body = await asyncio.to_thread(self._store.payload, job.id, INPUT)
        request = JobRequest.stored(job.format, job.options, body)
        answer = await self._service.infer(
            ctx, job.reference, None, request.decoder(), len(body), progress
        )
        record = answer.target.record
        result = await asyncio.to_thread(request.encode, record, answer.outputs, answer.extras)
        return record, result

    async def _batch(self, job: Job, progress: Progress) -> tuple[VersionRecord, bytes]:
        try:  # pyarrow is an extra: only batch jobs need it
            from modelport.jobs.batch.served import score_served
        except ImportError as exc:
            raise ConfigurationError(
                f"batch jobs need pyarrow (pip install 'modelport[batch]'): {exc}"
            ) from exc
        record, summary = await score_served(self._settings, self._service, job, progress)
        return record, orjson.dumps(summary.to_dict())

    async def _later(self, job: Job, exc: ModelportError) -> Requeued | None:
        delay = timedelta(seconds=min(2.0**job.attempts, RETRY_MAX_S))
        state = await self._settle(
            self._store.retry_later,
            job.id,
            self.worker,
            _problem(exc, job.id),
            delay,
            max_attempts=self.options.max_attempts,
            ttl=self.options.ttl,
        )
        log.warning("job %s: %s (%s)", job.id, exc.detail, _next(state, delay))
        return Requeued(delay) if state is JobState.QUEUED else None

    async def _settle(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Record how a run ended. When the database cannot take it, the job stays running
        under this worker until its lease runs out and it is run again: at least once, one
        answer."""
        try:
            return await asyncio.to_thread(write, *args, **kwargs)
        except StorageUnavailableError as exc:
            log.warning("job %s: outcome not recorded (%s); it will run again", args[0], exc)
            return None


class Progress:
    """A running job's :class:`~modelport.inference.service.Pieces`: reports to the database
    while it runs, and stops the job at its next piece once it was cancelled or lost."""

    def __init__(self, store: JobStore, job_id: str, worker: str, options: RunnerOptions) -> None:
        self.rows = options.piece_rows
        self._store = store
        self._job_id = job_id
        self._worker = worker
        self.rows_done = 0
        self._total: int | None = None
        self._beat = Beat.GOING
        self._beating = asyncio.create_task(self._beat_forever(options.beat_s))

    async def done(self, rows: int, total: int | None) -> None:
        self.rows_done, self._total = rows, total
        if self._beat is Beat.CANCEL:
            raise JobCancelledError(f"job {self._job_id} was cancelled")
        if self._beat is Beat.LOST:
            raise JobCancelledError(f"job {self._job_id} is no longer this worker's")

    def close(self) -> None:
        self._beating.cancel()

    async def _beat_forever(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            # a missed beat is harmless: the answer is written if the database is back by then
            with contextlib.suppress(StorageUnavailableError):
                self._beat = await asyncio.to_thread(
                    self._store.heartbeat, self._job_id, self._worker, self.rows_done, self._total
                )


def _problem(exc: ModelportError, job_id: str) -> dict[str, Any]:
    """The error as the job's status shows it: a 500's cause stays in the log."""
    problem = exc.to_problem()
    if exc.status == 500:
        log.error("job %s failed: %s", job_id, exc.detail, exc_info=exc.__cause__ or exc)
        problem["detail"] = f"{exc.title}; the cause is in the server log under job id {job_id}"
        problem.pop("errors", None)
        problem.pop("pointer", None)
    return problem


def _next(state: JobState | None, delay: timedelta) -> str:
    if state is JobState.QUEUED:
        return f"will run again in {delay.total_seconds():.0f} s"
    if state is JobState.FAILED:
        return "no attempts left: failed"
    return "outcome not recorded"
