"""The stored prediction log and feedback on SQLite and PostgreSQL alike: the driver-level batch
write reads back exactly, filters and pages work, pruning removes only what is old, and
feedback joins logged answers by request and by unit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from modelport.config import Settings
from modelport.errors import StorageUnavailableError
from modelport.monitoring.feedback import Feedback, FeedbackStore
from modelport.monitoring.predictions import NewEntry, PredictionQuery, PredictionStore
from modelport.registry import Registry
from modelport.store.unit_of_work import Database


@pytest.fixture
def database(backend: Settings) -> Iterator[Database]:
    registry = Registry.from_settings(backend)
    yield registry.database
    registry.close()


@pytest.fixture
def store(database: Database) -> PredictionStore:
    return PredictionStore(database)


def entry(request_id: str, at: datetime, model: str = "iris", version: int = 1) -> NewEntry:
    return NewEntry(
        request_id=request_id,
        at=at.timestamp(),
        protocol="v1",
        deployment=None,
        slot="primary",
        model=model,
        version=version,
        unit_id="user-1",
        status=200,
        error=None,
        latency_ms=1.25,
        rows=2,
        shadow=False,
        inputs='{"x":[[1.5,null],[2.0,3.0]],"city":["ab12","cd34"]}',
        outputs='{"label":[0,1]}',
    )


def test_entries_read_back_exactly_and_filter(store: PredictionStore) -> None:
    now = datetime.now(UTC).replace(microsecond=123456)
    store.write(
        [
            entry("a", now - timedelta(hours=2)),
            entry("b", now - timedelta(minutes=5), version=2),
            entry("c", now, model="wine"),
        ]
    )
    newest = store.query(PredictionQuery())
    assert [e.request_id for e in newest] == ["c", "b", "a"]
    first = newest[-1]
    assert first.at == now - timedelta(hours=2)
    assert first.inputs == {"x": [[1.5, None], [2.0, 3.0]], "city": ["ab12", "cd34"]}
    assert first.outputs == {"label": [0, 1]}
    assert (first.unit_id, first.rows, first.latency_ms, first.shadow) == ("user-1", 2, 1.25, False)
    assert [e.request_id for e in store.query(PredictionQuery(model="iris", version=2))] == ["b"]
    recent = store.query(PredictionQuery(since=now - timedelta(hours=1)))
    assert [e.request_id for e in recent] == ["c", "b"]
    following = store.query(PredictionQuery(after_id=first.id))
    assert [e.request_id for e in following] == ["b", "c"]


def test_every_kind_of_value_reads_back_as_written(store: PredictionStore) -> None:
    """Text that needs escaping, nulls, a true flag and a whole-number latency: SQLite's batch
    goes through one JSON array, which must not change a value."""
    at = datetime(2026, 12, 6, 21, 5, 7, 1, tzinfo=UTC)
    odd = entry('ü-"q"-\\', at)._replace(
        deployment="fraud",
        slot=None,
        version=None,
        unit_id=None,
        status=500,
        error="model_error",
        latency_ms=3.0,
        rows=0,
        shadow=True,
        inputs='{"city":["Zürich \\"Nord\\"","\\u2028 \\\\ end"],"n":[9007199254740993]}',
        outputs=None,
    )
    store.write([odd])
    (back,) = store.query(PredictionQuery())
    assert (back.request_id, back.at, back.deployment, back.slot, back.version) == (
        odd.request_id,
        at,
        "fraud",
        None,
        None,
    )
    assert (back.unit_id, back.status, back.error, back.latency_ms, back.rows, back.shadow) == (
        None,
        500,
        "model_error",
        3.0,
        0,
        True,
    )
    assert back.inputs == {"city": ['Zürich "Nord"', "\u2028 \\ end"], "n": [9007199254740993]}
    assert back.outputs is None


def test_a_full_batch_is_written_whole_and_in_order(store: PredictionStore) -> None:
    now = datetime.now(UTC)
    count = 500  # the log's batch
    store.write([entry(f"r{n}", now, version=n) for n in range(count)])
    back = store.query(PredictionQuery(after_id=0, limit=count + 1))
    assert [(e.request_id, e.version) for e in back] == [(f"r{n}", n) for n in range(count)]


def test_a_locked_table_is_a_storage_error_the_log_retries(backend: Settings) -> None:
    """Another writer holding the table past ``db_timeout_s`` makes the batch a 503 error,
    which the prediction log retries, never a bare driver error, which would drop the batch
    (on PostgreSQL the insert statement itself times out); entries before and after stay."""
    registry = Registry.from_settings(backend.model_copy(update={"db_timeout_s": 0.3}))
    try:
        store = PredictionStore(registry.database)
        now = datetime.now(UTC)
        store.write([entry("before", now)])
        with _table_locked(registry.database), pytest.raises(StorageUnavailableError):
            store.write([entry("while-locked", now)])
        store.write([entry("after", now)])
        assert [e.request_id for e in store.query(PredictionQuery())] == ["after", "before"]
    finally:
        registry.close()


@contextmanager
def _table_locked(database: Database) -> Iterator[None]:
    other = sa.create_engine(database.engine.url, poolclass=sa.pool.NullPool)
    with other.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")
            connection.exec_driver_sql("LOCK TABLE prediction_log IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            connection.exec_driver_sql("ROLLBACK")
    other.dispose()


def test_prune_removes_only_old_entries(store: PredictionStore) -> None:
    now = datetime.now(UTC)
    store.write([entry(f"old-{n}", now - timedelta(days=40)) for n in range(3)])
    store.write([entry("new", now)])
    assert store.prune(now - timedelta(days=30)) == 3
    assert [e.request_id for e in store.query(PredictionQuery())] == ["new"]
    assert store.prune(now - timedelta(days=30)) == 0


def test_feedback_joins_logged_answers_by_request_and_unit(
    database: Database, store: PredictionStore
) -> None:
    feedback = FeedbackStore(database)
    now = datetime.now(UTC)
    store.write([entry("a", now - timedelta(minutes=3)), entry("b", now - timedelta(minutes=1))])
    receipt = feedback.record(
        [
            Feedback(0, "a", 0),
            Feedback(0, "a", 1),
            Feedback(1, "a", 1),  # the newest for a row wins, within a batch too
            Feedback(1, unit_id="user-1", at=now),  # the unit's latest request: "b"
            Feedback(1, "never-logged"),
        ]
    )
    assert (receipt.accepted, receipt.unmatched) == (5, 1)
    joined = feedback.labelled("iris", 1, now - timedelta(hours=1), now, 100)
    assert sorted((j.row, j.truth) for j in joined) == [(0, 0), (0, 1), (1, 1)]
    assert all(j.outputs.startswith("{") for j in joined)
    assert feedback.labelled("iris", 2, now - timedelta(hours=1), now, 100) == []
