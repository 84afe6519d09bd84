"""Outcomes reported by clients (``POST /v1/events``): a metric's value for a unit.

Events are not tied to an experiment when they arrive: a conversion is a conversion, whichever
experiments its unit is enrolled in. An analysis joins them to its exposures by unit (or by
request id, for experiments randomised per request), counting only events at or after the
unit's first exposure. A covariate for CUPED is an event of its own metric, measured before
the experiment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert

from modelport.store.tables import MetricEventRow, utcnow
from modelport.store.unit_of_work import Database


@dataclass(frozen=True, slots=True)
class MetricEvent:
    metric: str
    value: float
    unit_id: str | None = None
    request_id: str | None = None
    at: datetime | None = None


class EventStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    def record(self, events: Sequence[MetricEvent]) -> int:
        """Store every event in one transaction; returns how many."""
        now = utcnow()
        rows = [
            {
                "metric": e.metric,
                "value": e.value,
                "unit_id": e.unit_id,
                "request_id": e.request_id,
                "at": e.at or now,
            }
            for e in events
        ]
        with self._db.write() as s:
            s.execute(insert(MetricEventRow), rows)
        return len(rows)
