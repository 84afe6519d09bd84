"""Ground truth, joined to logged predictions: what model quality is computed from.

Feedback names a logged request by its id (and the row within it, for a request of several
rows), or names a unit (``X-Unit-Id``): it then belongs to that unit's latest logged request at
or before the feedback's time, within ``UNIT_LOOKBACK``. The newest feedback for a request and
row replaces any before it. Feedback for a request the log does not hold (yet: it is written
in batches; or it was sampled out) is kept and counted as unmatched, and joins as soon as the
request is logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Text, cast, delete, insert, select, tuple_

from modelport.store.tables import FeedbackRow, PredictionRow
from modelport.store.unit_of_work import Database

UNIT_LOOKBACK = timedelta(days=7)
IN_CHUNK = 500
"""Ids per ``IN (…)`` list: well under every backend's limit on bound parameters."""


@dataclass(frozen=True, slots=True)
class Feedback:
    """One truth: for ``request_id`` (row ``row``), or for ``unit_id``'s latest request."""

    truth: Any
    request_id: str | None = None
    row: int = 0
    unit_id: str | None = None
    at: datetime | None = None
    """When the truth was observed (unit feedback joins the request logged before it)."""


@dataclass(frozen=True, slots=True)
class Receipt:
    accepted: int
    """Every truth received (one may replace an earlier one for the same request and row)."""
    unmatched: int
    """Of those, how many name no logged request (yet)."""


@dataclass(frozen=True, slots=True)
class Labelled:
    """A logged answer with its truth: the outputs of the whole request, and which row."""

    row: int
    truth: Any
    outputs: str


class FeedbackStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    def record(self, items: Sequence[Feedback]) -> Receipt:
        """Store every item (one transaction); unit feedback is tied to its request here."""
        now = datetime.now(UTC)
        with self._db.write() as session:
            rows = [
                {
                    "request_id": item.request_id or self._unit_request(session, item, now),
                    "row": item.row,
                    "unit_id": item.unit_id,
                    "truth": item.truth,
                    "at": item.at or now,
                }
                for item in items
            ]
            rows = _newest_per_key(rows)
            keyed = [(r["request_id"], r["row"]) for r in rows if r["request_id"] is not None]
            for start in range(0, len(keyed), IN_CHUNK):
                chunk = keyed[start : start + IN_CHUNK]
                session.execute(
                    delete(FeedbackRow).where(
                        tuple_(FeedbackRow.request_id, FeedbackRow.row).in_(chunk)
                    )
                )
            session.execute(insert(FeedbackRow), rows)
            logged = self._logged(session, {key for key, _ in keyed})
        unmatched = sum(r["request_id"] is None or r["request_id"] not in logged for r in rows)
        return Receipt(len(items), unmatched)

    def labelled(
        self, model: str, version: int, since: datetime, until: datetime, max_rows: int
    ) -> list[Labelled]:
        """The version's answers in ``[since, until)`` that have a truth, newest first."""
        statement = (
            select(FeedbackRow.row, FeedbackRow.truth, cast(PredictionRow.outputs, Text))
            .join(PredictionRow, PredictionRow.request_id == FeedbackRow.request_id)
            .where(
                PredictionRow.model == model,
                PredictionRow.version == version,
                PredictionRow.status == 200,
                PredictionRow.at >= since,
                PredictionRow.at < until,
            )
            .order_by(PredictionRow.at.desc())
            .limit(max_rows)
        )
        with self._db.read() as session:
            return [
                Labelled(row, truth, outputs)
                for row, truth, outputs in session.execute(statement)
                if outputs is not None
            ]

    @staticmethod
    def _unit_request(session: Any, item: Feedback, now: datetime) -> str | None:
        if item.unit_id is None:
            return None
        at = item.at or now
        found: str | None = session.scalar(
            select(PredictionRow.request_id)
            .where(
                PredictionRow.unit_id == item.unit_id,
                PredictionRow.at <= at,
                PredictionRow.at >= at - UNIT_LOOKBACK,
                PredictionRow.shadow.is_(False),
            )
            .order_by(PredictionRow.at.desc())
            .limit(1)
        )
        return found

    @staticmethod
    def _logged(session: Any, request_ids: set[str]) -> set[str]:
        ids = sorted(request_ids)
        found: set[str] = set()
        for start in range(0, len(ids), IN_CHUNK):
            found |= set(
                session.scalars(
                    select(PredictionRow.request_id)
                    .where(PredictionRow.request_id.in_(ids[start : start + IN_CHUNK]))
                    .distinct()
                )
            )
        return found


def _newest_per_key(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Within one batch too, the last truth for a request and row wins."""
    kept: dict[object, dict[str, Any]] = {}
    for index, row in enumerate(rows):
        key = (row["request_id"], row["row"]) if row["request_id"] is not None else index
        kept.pop(key, None)
        kept[key] = row
    return list(kept.values())
