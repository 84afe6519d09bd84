"""Exposures: which variant each enrolled unit met, and when it first did.

An observer of the data plane notes every answered request whose unit the router enrolled
(``ctx.experiment``); the first sighting of a unit is written, later ones are not (the row
keeps the first variant and time, which is what every metric counts from). Writes are batched
off the event loop through a bounded queue; a unit seen again soon is skipped in memory, and
an insert that meets a row already there (another replica, a restart) leaves it alone.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.dialects import postgresql

from modelport.inference.observers import Outcome, QueuedObserver
from modelport.inference.router import Router
from modelport.rollout.endpoint import DeploymentEndpoint
from modelport.store.bulk import insert_rows, sqlite_instant
from modelport.store.tables import ExposureRow, utcnow
from modelport.store.unit_of_work import Database

REMEMBERED_UNITS = 100_000
"""Units a process remembers having written, so a busy unit costs no write per request."""


@dataclass(frozen=True, slots=True)
class Exposure:
    experiment: str
    unit_id: str
    variant: str
    step: int
    at: datetime


class ExposureStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    def record(self, exposures: Sequence[Exposure]) -> None:
        """Write the first exposure of each unit. A unit written already (by another replica,
        before a restart) keeps its row: one statement, no read first, however many replicas
        race (and no RETURNING, which more than doubled the cost of a row). On SQLite the
        statement takes its rows as one JSON array (:mod:`modelport.store.bulk`)."""
        first: dict[tuple[str, str], Exposure] = {}
        for exposure in exposures:
            first.setdefault((exposure.experiment, exposure.unit_id), exposure)
        with self._db.write() as s:
            connection = s.connection()
            if connection.dialect.name == "sqlite":
                rows = [
                    (e.experiment, e.unit_id, e.variant, e.step, sqlite_instant(e.at))
                    for e in first.values()
                ]
                columns = ("experiment", "unit_id", "variant", "step", "at")
                insert_rows(connection, "experiment_exposures", columns, rows, skip_conflicts=True)
                return
            rows_by_name = [
                {
                    "experiment": e.experiment,
                    "unit_id": e.unit_id,
                    "variant": e.variant,
                    "step": e.step,
                    "at": e.at,
                }
                for e in first.values()
            ]
            s.execute(postgresql.insert(ExposureRow).on_conflict_do_nothing(), rows_by_name)


class ExposureRecorder:
    """The observer; its queue is started and stopped with the server."""

    def __init__(
        self, router: Router, store: ExposureStore, dropped: Counter, metrics: CollectorRegistry
    ) -> None:
        self._router = router
        self._store = store
        self._enrolled = Counter(
            "modelport_experiment_requests",
            "Requests answered for units enrolled in an experiment, by variant.",
            ["experiment", "variant"],
            registry=metrics,
        )
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._queue: QueuedObserver[Exposure] = QueuedObserver(
            "experiment-exposures", self._write, dropped, max_batch=1000, linger_s=0.2
        )

    def observe(self, outcome: Outcome) -> None:
        ctx = outcome.context
        if ctx.experiment is None or outcome.shadow or ctx.slot is None or ctx.deployment is None:
            return
        endpoint = self._router.endpoints.get(ctx.deployment)
        if not isinstance(endpoint, DeploymentEndpoint) or endpoint.allocation is None:
            return
        allocation = endpoint.allocation
        unit = ctx.request_id if allocation.per_request else ctx.unit_id
        if unit is None or allocation.experiment != ctx.experiment:
            return
        self._enrolled.labels(ctx.experiment, ctx.slot).inc()
        key = (ctx.experiment, unit)
        if key in self._seen:
            self._seen.move_to_end(key)
            return
        exposure = Exposure(ctx.experiment, unit, ctx.slot, allocation.step, utcnow())
        if self._queue.observe(exposure):  # a dropped one is tried again at the next request
            self._seen[key] = None
            if len(self._seen) > REMEMBERED_UNITS:
                self._seen.popitem(last=False)

    async def start(self) -> None:
        await self._queue.start()

    async def stop(self) -> None:
        await self._queue.stop()

    async def _write(self, exposures: list[Exposure]) -> None:
        await asyncio.to_thread(self._store.record, exposures)
