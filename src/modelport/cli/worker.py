"""`modelport worker`: run the jobs of some models from the job broker (production mode)."""

from __future__ import annotations

from typing import Annotated

import typer

from modelport.cli import output
from modelport.cli.sessions import current_settings, opened_registry
from modelport.errors import ConfigurationError
from modelport.logs import configure_logging

_HINT = {
    "configuration_error": "set MODELPORT_JOB_BROKER_URL (redis://… or amqp://…) on the "
    "servers and the workers, and install the celery extra: pip install 'modelport[celery]'"
}


def worker(
    model: Annotated[
        list[str],
        typer.Argument(help="Models whose jobs this worker runs: name, name@alias or name/3."),
    ],
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="Jobs run at once (default: MODELPORT_JOB_WORKERS)."),
    ] = None,
    wait_for_models: Annotated[
        bool | None,
        typer.Option(
            "--wait-for-models",
            help="Start even when a model cannot be loaded yet (default: exit with the reason).",
        ),
    ] = None,
) -> None:
    """Run jobs of these models from the job broker until SIGTERM (running jobs are given
    back to the queue)."""
    overrides = {"wait_for_models": wait_for_models} if wait_for_models is not None else {}
    settings = current_settings(**overrides)
    with output.reporting_errors(_HINT):
        if settings.job_broker_url is None:
            raise ConfigurationError("no job broker: MODELPORT_JOB_BROKER_URL is not set")
        try:  # celery is an extra: no other command imports it
            from celery import signals

            from modelport.jobs.worker import JobWorker
        except ImportError as exc:
            raise ConfigurationError(f"the worker needs the celery extra: {exc}") from exc
        if not settings.wait_for_models:
            from modelport.cli.server import check_models

            with opened_registry(settings) as registry:
                check_models(registry, model)
    configure_logging(settings)
    jobs = JobWorker(settings, model)
    with output.reporting_errors():
        problems = jobs.start()
        if problems and not settings.wait_for_models:
            jobs.close()
            raise ConfigurationError("cannot run jobs for " + "; ".join(problems))
    signals.worker_shutting_down.connect(lambda **_: jobs.stopping(), weak=False)
    celery_worker = jobs.celery.Worker(
        hostname=jobs.node,
        pool_cls="threads",
        concurrency=concurrency or max(settings.job_workers, 1),
        queues=jobs.queues,
        quiet=True,
        without_gossip=True,
        without_mingle=True,
        loglevel=settings.log_level.upper(),
    )
    output.errors.print(f"running jobs of {', '.join(jobs.queues)} as {jobs.name}")
    try:
        celery_worker.start()
    finally:
        jobs.close()
    raise typer.Exit(celery_worker.exitcode or 0)
