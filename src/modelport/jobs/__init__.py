"""Asynchronous jobs: submitted now, run later by a worker, polled for their answer.

A job is kept in the registry database (:class:`JobStore`) from submission to its answer, so
it survives the process that accepted it. A server hands it on through its
:class:`Dispatch`: to its own :class:`JobRunner` (embedded mode) or to a Celery broker whose
``modelport worker`` processes run it (:mod:`modelport.jobs.worker`). Either runs it through
the same :class:`~modelport.inference.InferenceService` as online requests (the same pool,
batcher and observers), a piece at a time so online traffic is never stuck behind a large
job. Batch runs (:mod:`modelport.jobs.batch`), their cron schedules
(:mod:`modelport.jobs.schedules`) and stream scoring (:mod:`modelport.jobs.streaming`) live
here too.
"""

from modelport.jobs.dispatch import Dispatch
from modelport.jobs.execution import RunnerOptions
from modelport.jobs.formats import JobFormat, JobRequest
from modelport.jobs.model import Job, JobKind, JobState
from modelport.jobs.runner import JobRunner
from modelport.jobs.store import JobStore, NewJob

__all__ = [
    "Dispatch",
    "Job",
    "JobFormat",
    "JobKind",
    "JobRequest",
    "JobRunner",
    "JobState",
    "JobStore",
    "NewJob",
    "RunnerOptions",
]
