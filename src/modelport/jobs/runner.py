"""The job worker inside a server process: claims queued jobs for the models it serves and
runs them through the process's own :class:`~modelport.inference.InferenceService`.

A job is one request to the service (so it is metered, logged and drift-watched like any
other, under its job id), predicted ``piece_rows`` at a time. While it runs, its worker
reports progress to the database every second or so; a worker that stops reporting for
``job_lease_s`` (killed, cut off) loses the job to whichever worker looks next. A stopping
server gives its running jobs back at once, so nothing waits for the lease after a graceful
restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from modelport.config import Settings
from modelport.errors import (
    JobCancelledError,
    ModelNotReadyError,
    ModelportError,
    QueueFullError,
    StorageUnavailableError,
)
from modelport.inference.background import Repeated
from modelport.inference.context import InferenceContext, Transport
from modelport.inference.service import InferenceService
from modelport.jobs.formats import JobRequest
from modelport.jobs.model import Job, JobState
from modelport.jobs.store import INPUT, Beat, JobStore
from modelport.logs import current_request

log = logging.getLogger("modelport.jobs")

PASSING = (StorageUnavailableError, ModelNotReadyError, QueueFullError)
"""Failures a later run may not meet: the job is queued again (with backoff)."""
RETRY_MAX_S = 60.0
PURGE_EVERY_S = 60.0
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


class JobRunner:
    def __init__(
        self,
        store: JobStore,
        service: InferenceService,
        served: Callable[[], Collection[str]],
        options: RunnerOptions,
        worker: str,
    ) -> None:
        """``served``: the model and deployment names this process answers for now."""
        self._store = store
        self._service = service
        self._served = served
        self.options = options
        self.worker = worker
        self._running: dict[str, asyncio.Task[None]] = {}
        self._repeated = Repeated("running jobs", self._step, log)
        self._loop: asyncio.Task[None] | None = None
        self._recovered_at = self._purged_at = -math.inf

    def wake(self) -> None:
        """Look for work now (a job was just submitted to this process)."""
        self._repeated.wake()

    def start(self) -> None:
        if self.options.workers > 0:
            self._loop = asyncio.create_task(self._repeated.forever(self.options.poll_s))
            self.wake()

    async def stop(self) -> None:
        """Stop claiming, and give running jobs back to the queue for another worker."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _step(self) -> None:
        now = time.monotonic()
        # a killed worker's job is looked for every half lease: it waits about a lease, not
        # until the next purge
        if now - self._recovered_at > self.options.lease.total_seconds() / 2:
            await self._recover()
            self._recovered_at = now
        if now - self._purged_at > PURGE_EVERY_S:
            purged = await asyncio.to_thread(self._store.purge)
            if purged:
                log.info("deleted %d expired jobs", purged)
            self._purged_at = now
        while len(self._running) < self.options.workers:
            job = await asyncio.to_thread(self._store.claim, self.worker, self._served())
            if job is None:
                return
            task = asyncio.create_task(self._run(job))
            self._running[job.id] = task
            task.add_done_callback(functools.partial(self._finished, job.id))

    async def _recover(self) -> None:
        options = self.options
        recovered = await asyncio.to_thread(
            self._store.recover, options.lease, max_attempts=options.max_attempts, ttl=options.ttl
        )
        for job_id in recovered:
            log.warning("job %s: its worker stopped reporting; queued again", job_id)

    def _finished(self, job_id: str, _task: asyncio.Task[None]) -> None:
        del self._running[job_id]
        self.wake()

    async def _run(self, job: Job) -> None:
        ctx = InferenceContext(job.id, Transport.JOB, caller=job.caller, admitted=True)
        token = current_request.set(ctx.log_ids())
        progress = Progress(self._store, job.id, self.worker, self.options)
        try:
            log.info("job %s: running %s (attempt %d)", job.id, job.reference, job.attempts)
            await self._attempt(job, ctx, progress)
        except asyncio.CancelledError:
            await self._settle(self._store.release, job.id, self.worker, self.options.ttl)
            log.info("job %s: given back to the queue (this worker is stopping)", job.id)
            raise
        finally:
            progress.close()
            current_request.reset(token)

    async def _attempt(self, job: Job, ctx: InferenceContext, progress: Progress) -> None:
        store, worker, ttl = self._store, self.worker, self.options.ttl
        try:
            body = await asyncio.to_thread(store.payload, job.id, INPUT)
            request = JobRequest.stored(job.format, job.options, body)
            answer = await self._service.infer(
                ctx, job.reference, None, request.decoder(), len(body), progress
            )
            result = await asyncio.to_thread(
                request.encode, answer.target.record, answer.outputs, answer.extras
            )
        except JobCancelledError:
            if await self._settle(store.stopped, job.id, worker, ttl):
                log.info("job %s: cancelled", job.id)
        except PASSING as exc:
            delay = timedelta(seconds=min(2.0**job.attempts, RETRY_MAX_S))
            state = await self._settle(
                store.retry_later,
                job.id,
                worker,
                _problem(exc, job.id),
                delay,
                max_attempts=self.options.max_attempts,
                ttl=ttl,
            )
            log.warning("job %s: %s (%s)", job.id, exc.detail, _next(state, delay))
        except ModelportError as exc:
            await self._settle(store.fail, job.id, worker, _problem(exc, job.id), ttl)
            log.info("job %s: failed: %s", job.id, exc.detail)
        except Exception as exc:
            log.exception("job %s: unexpected error", job.id)
            problem = _problem(ModelportError(f"unexpected error: {type(exc).__name__}"), job.id)
            await self._settle(store.fail, job.id, worker, problem, ttl)
        else:
            record = answer.target.record
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

    async def done(self, rows: int, total: int) -> None:
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
