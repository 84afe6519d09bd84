"""Jobs through a Celery broker (Redis or RabbitMQ): the production mode.

The database stays the record of every job. A broker message only says "run job X" and goes
to the queue of the job's model (``PREFIX.NAME``), which only ``modelport worker`` processes
serving that model consume, so a worker never loads a model for a task. Messages are
acknowledged after the job ran (acks late) and given back when a worker dies; a message that
comes twice is harmless because a worker runs a job only after claiming it in the database
(:meth:`~modelport.jobs.store.JobStore.take`). A message that never arrives (the broker was
down at submission) is sent again by the workers' sweep, so the broker can lose nothing that
matters.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from celery import Celery
from kombu.exceptions import KombuError

from modelport.config import Settings
from modelport.errors import BackendUnavailableError, ConfigurationError, ConflictError
from modelport.jobs.model import Job

log = logging.getLogger("modelport.jobs")

TASK = "modelport.run_job"
VISIBILITY_TIMEOUT_S = 3600
"""Redis gives an unacknowledged message to another worker after this long. A job running
longer is not run twice for it (the second worker finds it running and leaves it); its only
use is a dead worker's message, which the sweep has usually sent again long before."""
_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


def celery_app(settings: Settings) -> Celery:
    if settings.job_broker_url is None:
        raise ConfigurationError("set MODELPORT_JOB_BROKER_URL to a Redis or RabbitMQ URL")
    app = Celery("modelport", broker=settings.job_broker_url.get_secret_value())
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
    )
    return app


def queue_of(settings: Settings, name: str) -> str:
    return f"{settings.job_queue_prefix}.{name}"


class Broker:
    """Sends jobs to the workers of their models."""

    def __init__(self, settings: Settings) -> None:
        self.app = celery_app(settings)
        self._settings = settings

    def send(self, job: Job, delay: timedelta = timedelta(0)) -> None:
        try:
            self.app.send_task(
                TASK,
                args=[job.id],
                queue=queue_of(self._settings, job.name),
                countdown=delay.total_seconds() or None,
                retry=True,
                retry_policy=_PUBLISH_RETRY,
            )
        except (KombuError, OSError) as exc:
            raise BackendUnavailableError(f"job broker unreachable: {exc}") from exc

    def close(self) -> None:
        self.app.close()


class BrokerDispatch:
    """A server's :class:`~modelport.jobs.dispatch.Dispatch` in production mode: it runs no
    job itself."""

    def __init__(self, settings: Settings) -> None:
        self._broker = Broker(settings)

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        await asyncio.to_thread(self._broker.close)

    def admit(self, deployment: str | None) -> None:
        if deployment is not None:
            raise ConflictError(
                f"{deployment} is a deployment: with a job broker, jobs run on `modelport "
                "worker` processes, which serve models; submit the job to a model"
            )

    async def queued(self, job: Job) -> None:
        try:
            await asyncio.to_thread(self._broker.send, job)
        except BackendUnavailableError as exc:
            log.warning("job %s: %s; a worker's sweep will send it", job.id, exc.detail)
