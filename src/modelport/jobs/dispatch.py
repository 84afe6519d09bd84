"""How a submitted job reaches a worker: the server's own runner (embedded mode) or a Celery
broker (production mode, :mod:`modelport.jobs.broker`). Either way the job is already safe in
the database when it is handed on; the hand-over only says "run it now"."""

from __future__ import annotations

from typing import Protocol

from modelport.jobs.model import Job


class Dispatch(Protocol):
    def start(self) -> None: ...

    async def stop(self) -> None: ...

    def admit(self, deployment: str | None) -> None:
        """Refuse, before it is stored, a job no worker of this kind could run."""

    async def queued(self, job: Job) -> None:
        """``job`` was just submitted."""
