"""The stored prediction log: written in batches by the observer, read by the API, the CLI
and the drift and quality jobs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Text, cast, delete, select

from modelport.durations import parse_instant
from modelport.store.bulk import insert_columns, sqlite_epoch_instants
from modelport.store.tables import PredictionRow
from modelport.store.unit_of_work import Database

MAX_QUERY_ROWS = 10_000
PRUNE_CHUNK = 10_000


class NewEntry(NamedTuple):
    """A request about to be logged, column by column (``inputs``/``outputs`` JSON text)."""

    request_id: str
    at: float
    """Seconds since the epoch (``time.time()``): each store makes the time it keeps."""
    protocol: str
    deployment: str | None
    slot: str | None
    model: str | None
    version: int | None
    unit_id: str | None
    status: int
    error: str | None
    latency_ms: float
    rows: int
    shadow: bool
    inputs: str | None
    outputs: str | None


_INSERT = (  # PostgreSQL's (psycopg's) parameter markers
    f"INSERT INTO prediction_log ({', '.join(NewEntry._fields)}) "
    f"VALUES ({', '.join(['%s'] * len(NewEntry._fields))})"
)


def _naive_utc(seconds: float) -> datetime:
    """As :class:`~modelport.store.tables.UTCDateTime` stores a time: naive UTC."""
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class LoggedPrediction:
    id: int
    request_id: str
    at: datetime
    protocol: str
    deployment: str | None
    slot: str | None
    model: str | None
    version: int | None
    unit_id: str | None
    status: int
    error: str | None
    latency_ms: float
    rows: int
    shadow: bool
    inputs: dict[str, Any] | None
    outputs: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}


@dataclass(frozen=True, slots=True)
class PredictionQuery:
    """Which logged predictions to read; every field narrows, none given reads the newest."""

    model: str | None = None
    version: int | None = None
    deployment: str | None = None
    request_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_id: int | None = None
    """Only rows written after this one, oldest first: how ``logs --follow`` tails the log."""
    limit: int = 100

    @classmethod
    def parsed(
        cls, *, since: str | None = None, until: str | None = None, **fields: Any
    ) -> PredictionQuery:
        """A query whose ``since``/``until`` are given as a caller types them: ISO times or
        ages (``1h``, ``7d``); a bad one is a 422 naming the field."""
        return cls(
            since=parse_instant(since, "since") if since else None,
            until=parse_instant(until, "until") if until else None,
            **fields,
        )

    def following(self, last: int) -> PredictionQuery:
        """The same filters, for what was logged after entry ``last`` (any time)."""
        return replace(self, since=None, until=None, after_id=last, limit=MAX_QUERY_ROWS)


class PredictionStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    def write(self, entries: Sequence[NewEntry]) -> None:
        """One transaction for the whole batch, in one statement on SQLite.

        Rows go as they are (inputs and outputs already JSON text, the time in the form the
        dialect stores), as driver SQL: the ORM's per-row work cost three times the rest of
        the write. On SQLite the batch goes column by column (no tuple made per row) in
        multi-row statements of up to 256 rows (:mod:`modelport.store.bulk`). Either way
        errors come through SQLAlchemy, so an unreachable database is the 503 the log
        retries, not a lost batch.
        """
        if not entries:
            return
        with self._db.write() as session:
            connection = session.connection()
            if connection.dialect.name == "sqlite":
                columns: dict[str, Sequence[Any]] = dict(
                    zip(NewEntry._fields, zip(*entries, strict=True), strict=True)
                )
                columns["at"] = sqlite_epoch_instants(columns["at"])
                insert_columns(connection, "prediction_log", columns)
                return
            rows = [(e.request_id, _naive_utc(e.at), *e[2:]) for e in entries]
            connection.exec_driver_sql(_INSERT, rows)

    def query(self, query: PredictionQuery) -> list[LoggedPrediction]:
        """Newest first, or oldest first after ``after_id``; at most MAX_QUERY_ROWS."""
        statement = select(PredictionRow)
        for column, value in (
            (PredictionRow.model, query.model),
            (PredictionRow.version, query.version),
            (PredictionRow.deployment, query.deployment),
            (PredictionRow.request_id, query.request_id),
        ):
            if value is not None:
                statement = statement.where(column == value)
        if query.since is not None:
            statement = statement.where(PredictionRow.at >= query.since)
        if query.until is not None:
            statement = statement.where(PredictionRow.at < query.until)
        if query.after_id is not None:
            statement = statement.where(PredictionRow.id > query.after_id)
            statement = statement.order_by(PredictionRow.id)
        else:
            statement = statement.order_by(PredictionRow.id.desc())
        statement = statement.limit(max(1, min(query.limit, MAX_QUERY_ROWS)))
        with self._db.read() as session:
            return [_logged(row) for row in session.scalars(statement)]

    def window(
        self, model: str, version: int, since: datetime, until: datetime, max_rows: int
    ) -> list[tuple[str | None, str | None]]:
        """Inputs and outputs (JSON text) of the version's answered requests in ``[since,
        until)``, newest ``max_rows`` requests at most, shadow answers included: what drift
        and quality read. Text, not parsed JSON: the reader decodes it faster itself."""
        statement = (
            select(cast(PredictionRow.inputs, Text), cast(PredictionRow.outputs, Text))
            .where(
                PredictionRow.at >= since,
                PredictionRow.at < until,
                PredictionRow.model == model,
                PredictionRow.version == version,
                PredictionRow.status == 200,
            )
            .order_by(PredictionRow.at.desc())
            .limit(max_rows)
        )
        with self._db.read() as session:
            return [(inputs, outputs) for inputs, outputs in session.execute(statement)]

    def prune(self, before: datetime) -> int:
        """Delete what was logged before ``before``, in chunks so no transaction grows large
        or holds the SQLite writer for long; returns how many rows went."""
        removed = 0
        while True:
            with self._db.write() as session:
                ids = list(
                    session.scalars(
                        select(PredictionRow.id).where(PredictionRow.at < before).limit(PRUNE_CHUNK)
                    )
                )
                if ids:
                    session.execute(delete(PredictionRow).where(PredictionRow.id.in_(ids)))
            removed += len(ids)
            if len(ids) < PRUNE_CHUNK:
                return removed


def _logged(row: PredictionRow) -> LoggedPrediction:
    return LoggedPrediction(
        id=row.id,
        request_id=row.request_id,
        at=row.at,
        protocol=row.protocol,
        deployment=row.deployment,
        slot=row.slot,
        model=row.model,
        version=row.version,
        unit_id=row.unit_id,
        status=row.status,
        error=row.error,
        latency_ms=row.latency_ms,
        rows=row.rows,
        shadow=row.shadow,
        inputs=row.inputs,
        outputs=row.outputs,
    )
