"""The job worker inside a server process (embedded mode, no broker): claims queued jobs for
the models it serves and runs them through the process's own
:class:`~modelport.inference.InferenceService`.

Idle, it looks for work every ``job_poll_s`` (at once when a job was submitted to this
process); every half lease it queues again the jobs of workers that went silent. A stopping
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

from modelport.config import Settings
from modelport.inference.background import Repeated
from modelport.inference.service import InferenceService
from modelport.jobs.execution import Execution, Requeued, RunnerOptions
from modelport.jobs.model import Job, JobState
from modelport.jobs.store import JobStore

log = logging.getLogger("modelport.jobs")

PURGE_EVERY_S = 60.0


class JobRunner:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        service: InferenceService,
        served: Callable[[], Collection[str]],
        options: RunnerOptions,
        worker: str,
    ) -> None:
        """``served``: the model and deployment names this process answers for now."""
        self._store = store
        self._execution = Execution(settings, store, service, options, worker)
        self._served = served
        self.options = options
        self.worker = worker
        self._running: dict[str, asyncio.Task[Requeued | None]] = {}
        self._repeated = Repeated("running jobs", self._step, log)
        self._loop: asyncio.Task[None] | None = None
        self._recovered_at = self._purged_at = -math.inf

    def admit(self, deployment: str | None) -> None:
        pass  # a server runs the jobs of the deployments it serves

    async def queued(self, job: Job) -> None:
        """A job was just submitted to this process: look for work now."""
        self._repeated.wake()

    def start(self) -> None:
        if self.options.workers > 0:
            self._loop = asyncio.create_task(self._repeated.forever(self.options.poll_s))
            self._repeated.wake()

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
            await recover(self._store, self.options)
            self._recovered_at = now
        if now - self._purged_at > PURGE_EVERY_S:
            await purge(self._store)
            self._purged_at = now
        while len(self._running) < self.options.workers:
            job = await asyncio.to_thread(self._store.claim, self.worker, self._served())
            if job is None:
                return
            task = asyncio.create_task(self._execution.run(job))
            self._running[job.id] = task
            task.add_done_callback(functools.partial(self._finished, job.id))

    def _finished(self, job_id: str, _task: asyncio.Task[Requeued | None]) -> None:
        del self._running[job_id]
        self._repeated.wake()


async def recover(store: JobStore, options: RunnerOptions) -> list[Job]:
    """Queue again the jobs whose worker went silent (or fail those out of attempts)."""
    recovered = await asyncio.to_thread(
        store.recover, options.lease, max_attempts=options.max_attempts, ttl=options.ttl
    )
    for job in recovered:
        now = "queued again" if job.state is JobState.QUEUED else job.state.value
        log.warning("job %s: its worker stopped reporting; %s", job.id, now)
    return recovered


async def purge(store: JobStore) -> None:
    purged = await asyncio.to_thread(store.purge)
    if purged:
        log.info("deleted %d expired jobs", purged)
