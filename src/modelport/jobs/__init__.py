"""Asynchronous jobs: submitted now, run later by a worker, polled for their answer.

A job is kept in the registry database (:class:`JobStore`) from submission to its answer, so
it survives the process that accepted it. :class:`JobRunner` runs jobs through the same
:class:`~modelport.inference.InferenceService` as online requests (the same pool, batcher and
observers), a piece at a time so online traffic is never stuck behind a large job.
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
