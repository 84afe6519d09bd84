"""What a job is, as the store returns it and the API shows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class JobKind(StrEnum):
    PREDICT = "predict"
    """An inference body, answered as the model's predict route would have answered it."""
    BATCH = "batch"
    """Files scored into a folder (``modelport batch`` run by a worker); answered with the
    run's summary."""


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    kind: JobKind
    reference: str
    name: str
    format: str
    options: dict[str, Any]
    state: JobState
    caller: str | None
    request_id: str
    rows_total: int | None
    rows_done: int
    attempts: int
    run_after: datetime
    worker: str | None
    heartbeat_at: datetime | None
    cancel_requested: bool
    model: str | None
    version: int | None
    error: dict[str, Any] | None
    result_type: str | None
    result_size: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """The job as the API and ``modelport jobs status --json`` show it."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "model": self.reference,
            "format": self.format,
            "state": self.state.value,
            "progress": {"rows_done": self.rows_done, "rows_total": self.rows_total},
            "attempts": self.attempts,
            "cancel_requested": self.cancel_requested,
            "served_by": None
            if self.model is None
            else {"model": self.model, "version": self.version},
            "error": self.error,
            "result": None
            if self.result_type is None
            else {"media_type": self.result_type, "size": self.result_size},
            "request_id": self.request_id,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "expires_at": _iso(self.expires_at),
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
