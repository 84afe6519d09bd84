"""``modelport worker``: a Celery worker that runs the jobs of the models it serves.

The process holds one :class:`~modelport.plane.DataPlane`, loaded once at start-up and kept
in step with the registry like a server's, on an event loop of its own thread. Celery's
threads take messages from the models' queues and hand each job to that loop, so a job runs
exactly as it would inside a server: the same execution, pieces, progress, observers.

Every worker also sweeps, every half lease: jobs of workers that went silent are queued and
sent again, queued jobs nobody claimed for four leases (their message was lost) are sent
again, and expired jobs are deleted. Sweeps of several workers do not collide: each job is
picked up by one (a conditional update in the database).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Coroutine, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from celery import Celery

from modelport.config import Settings
from modelport.errors import ModelportError
from modelport.inference.background import Repeated
from modelport.jobs.broker import TASK, Broker, queue_of
from modelport.jobs.execution import Execution, Requeued, RunnerOptions
from modelport.jobs.model import Job
from modelport.jobs.runner import PURGE_EVERY_S, purge, recover
from modelport.jobs.schedules import Scheduler, ScheduleStore
from modelport.jobs.store import JobStore
from modelport.plane import DataPlane
from modelport.registry import ModelAddress
from modelport.store.leases import replica_id

log = logging.getLogger("modelport.jobs")

UNCLAIMED_LEASES = 4
T = TypeVar("T")


class JobWorker:
    def __init__(self, settings: Settings, models: Sequence[str]) -> None:
        self.name = replica_id()
        self.node = f"{settings.job_queue_prefix}-{os.getpid()}@{socket.gethostname()}"
        """Celery's name of this worker: one of its own (workers named alike share a control
        queue on RabbitMQ, which only one of them can hold)."""
        self.queues = sorted({queue_of(settings, ModelAddress.parse(m).name) for m in models})
        self.options = RunnerOptions.from_settings(settings)
        self._settings = settings
        self._broker = Broker(settings)
        self._plane = DataPlane(settings, models)
        self._service = self._plane.service()
        self._store = JobStore(self._plane.registry.database)
        self._scheduler = Scheduler(ScheduleStore(self._plane.registry.database), self._queued)
        self._execution = Execution(settings, self._store, self._service, self.options, self.name)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="jobs", daemon=True)
        self._running: set[asyncio.Task[Any]] = set()
        self._sweep = Repeated("sweeping jobs", self._sweep_once, log)
        self._background: list[asyncio.Task[None]] = []
        self._purged_at = -math.inf
        self.celery: Celery = self._broker.app
        self.celery.task(name=TASK)(self.run)

    def start(self) -> list[str]:
        """Load the models and start sweeping; what could not be loaded, one phrase each."""
        self._thread.start()
        return self._call(self._started())

    def run(self, job_id: str) -> None:
        """The Celery task: run the job if this worker can claim it, from a Celery thread."""
        future = asyncio.run_coroutine_threadsafe(self._run(job_id), self._loop)
        try:
            job, requeued = future.result()
        except concurrent.futures.CancelledError:
            return  # stopping: the job went back to the queue and was sent again
        if job is not None and requeued is not None:
            self._send(job, requeued.delay)

    def stopping(self) -> None:
        """Celery is shutting down: give running jobs back now rather than at their end."""
        self._loop.call_soon_threadsafe(self._give_back)

    def close(self) -> None:
        self._call(self._closed())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        self._broker.close()

    async def _started(self) -> list[str]:
        problems = await self._plane.load()
        await self._service.start()
        lease_s = self.options.lease.total_seconds()
        self._scheduler.start()
        self._background = [
            asyncio.create_task(self._plane.follower.watch(self._settings.reload_interval_s)),
            asyncio.create_task(self._sweep.forever(lease_s / 2)),
        ]
        self._sweep.wake()
        return problems

    async def _closed(self) -> None:
        await self._scheduler.stop()
        for task in self._background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._service.stop()
        await self._plane.close()

    async def _run(self, job_id: str) -> tuple[Job | None, Requeued | None]:
        options = self.options
        job = await asyncio.to_thread(
            self._store.take,
            job_id,
            self.name,
            options.lease,
            max_attempts=options.max_attempts,
            ttl=options.ttl,
        )
        if job is None:
            log.info("job %s: nothing to do (finished, not due, or running elsewhere)", job_id)
            return None, None
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        try:
            return job, await self._execution.run(job)
        except asyncio.CancelledError:
            await self._queued(job)
            raise
        finally:
            self._running.discard(task)

    def _give_back(self) -> None:
        for task in self._running:
            task.cancel()

    async def _sweep_once(self) -> None:
        lost = [job for job in await recover(self._store, self.options) if not job.state.finished]
        unclaimed = await asyncio.to_thread(
            self._store.unclaimed, self.options.lease * UNCLAIMED_LEASES
        )
        for job in [*lost, *unclaimed]:
            await self._queued(job)
        if time.monotonic() - self._purged_at > PURGE_EVERY_S:
            await purge(self._store)
            self._purged_at = time.monotonic()

    async def _queued(self, job: Job) -> None:
        await asyncio.to_thread(self._send, job, timedelta(0))

    def _send(self, job: Job, delay: timedelta) -> None:
        """Hand a queued job to the broker; when it cannot take it now, the sweep sends it
        later (the job waits in the database)."""
        try:
            self._broker.send(job, delay)
        except ModelportError as exc:
            log.warning("job %s: %s; the sweep will send it again", job.id, exc.detail)

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()
