"""A batch run submitted as a job: scored by a worker's own data plane (a server's, or a
``modelport worker``'s) with the version it answers with now, so a batch job is routed,
metered and logged like the worker's other requests. Its answer is the run's summary."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from modelport.config import Settings
from modelport.errors import BackendUnavailableError
from modelport.inference import InferenceContext, InferenceService, Transport
from modelport.jobs.batch.parts import FileFormat
from modelport.jobs.batch.scoring import BatchJob, BatchSummary, PartScorer, finish, plan_for
from modelport.jobs.execution import Progress
from modelport.jobs.model import Job
from modelport.registry import VersionRecord


def batch_job(reference: str, options: dict[str, Any]) -> BatchJob:
    """The run a job's options describe (the body of ``POST …/batch-jobs``, or a schedule's
    batch)."""
    return BatchJob(
        reference,
        options["input"],
        options["output"],
        tuple(options.get("passthrough", ())),
        tuple(options.get("outputs", ())),
        FileFormat(options.get("format", FileFormat.PARQUET.value)),
        int(options.get("chunk_rows", 1024)),
        bool(options.get("overwrite", False)),
    )


async def score_served(
    settings: Settings, service: InferenceService, job: Job, progress: Progress
) -> tuple[VersionRecord, BatchSummary]:
    """Score every part left, reporting rows as chunks are written; a cancellation stops the
    run after the part in hand (written parts stay: the same job submitted again resumes)."""
    ctx = InferenceContext(job.id, Transport.BATCH, admitted=True)
    record = service.resolve(job.reference, None, ctx).record
    run = batch_job(f"{record.name}/{record.version}", job.options)
    try:
        plan = await asyncio.to_thread(plan_for, settings, record, run)
        total = plan.rows_total()
        scorer = PartScorer(settings, plan, service)

        def written(rows: int) -> None:
            progress.rows_done += rows

        started = time.perf_counter()
        for part in plan.todo:
            await scorer.score(part, written)
            await progress.done(progress.rows_done, total)
        seconds = time.perf_counter() - started
        summary = await asyncio.to_thread(finish, settings, plan, progress.rows_done, seconds)
    except (FileNotFoundError, PermissionError):
        raise  # a file gone or not readable is no passing failure
    except OSError as exc:  # an object store or a network share not answering
        raise BackendUnavailableError(f"batch storage unreachable: {exc}") from exc
    return record, summary
