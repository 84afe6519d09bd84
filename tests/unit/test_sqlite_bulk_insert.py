"""Rows inserted on SQLite in multi-row statements come back as given and in order, whatever
their number; a taken key is skipped only when asked, and no other constraint is ever
waived."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from modelport.store.bulk import insert_rows, sqlite_epoch_instants, sqlite_instant

COLUMNS = ("key", "text", "number", "ratio", "flag", "at")


@pytest.fixture
def engine() -> sa.Engine:
    engine = sa.create_engine("sqlite://")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE t (key TEXT PRIMARY KEY, text TEXT, number INTEGER NOT NULL, "
            "ratio REAL, flag BOOLEAN, at DATETIME)"
        )
    return engine


def test_values_come_back_as_given(engine: sa.Engine) -> None:
    at = datetime(2026, 12, 6, 21, 30, 1, 5, tzinfo=UTC)
    rows = [
        ("a", 'quote " and \\ and ü', 2**62, 0.1, True, sqlite_instant(at)),
        ("b", None, -1, 3.0, False, None),
    ]
    with engine.begin() as connection:
        insert_rows(connection, "t", COLUMNS, rows)
        back = connection.exec_driver_sql("SELECT * FROM t ORDER BY key").all()
    assert [tuple(row) for row in back] == [
        ("a", 'quote " and \\ and ü', 2**62, 0.1, 1, "2026-12-06 21:30:01.000005"),
        ("b", None, -1, 3.0, 0, None),
    ]


@pytest.mark.parametrize("count", [1, 7, 256, 300, 1_000])
def test_every_row_of_any_batch_size_arrives_in_order(engine: sa.Engine, count: int) -> None:
    rows = [(f"k{i:05d}", f"row {i}", i, i / 3, i % 2 == 0, None) for i in range(count)]
    with engine.begin() as connection:
        insert_rows(connection, "t", COLUMNS, rows)
        back = connection.exec_driver_sql("SELECT key, number FROM t ORDER BY rowid").all()
    assert [tuple(row) for row in back] == [(key, number) for key, _, number, *_ in rows]


def test_a_statement_stays_within_the_parameter_limit(engine: sa.Engine) -> None:
    """An SQLite built with the old limit (999 parameters) still takes a large batch."""
    rows = [(f"k{i:04d}", None, i, None, None, None) for i in range(500)]
    with engine.begin() as connection:
        driver = connection.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
        insert_rows(connection, "t", COLUMNS, rows)
        assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 500


def test_a_taken_key_is_skipped_only_when_asked(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        insert_rows(connection, "t", COLUMNS, [("a", "first", 1, None, None, None)])
        insert_rows(
            connection, "t", COLUMNS, [("a", "second", 2, None, None, None)], skip_conflicts=True
        )
        assert connection.exec_driver_sql("SELECT text FROM t").scalar_one() == "first"
        with pytest.raises(sa.exc.IntegrityError):
            insert_rows(connection, "t", COLUMNS, [("a", "third", 3, None, None, None)])


def test_other_constraints_still_fail_the_statement(engine: sa.Engine) -> None:
    with engine.begin() as connection, pytest.raises(sa.exc.IntegrityError):
        insert_rows(
            connection, "t", COLUMNS, [("z", "no number", None, None, None, None)],
            skip_conflicts=True,
        )  # fmt: skip


def test_a_value_every_row_shares_is_stored_as_a_bound_one_would_be(engine: sa.Engine) -> None:
    """NULLs and booleans shared by a whole chunk go into the statement as literals; a column
    that only compares equal (``0.0`` beside ``False``) is still bound value by value."""
    shared = [(f"k{i:03d}", None, i, None, True, None) for i in range(300)]
    mixed = [("m0", None, 0, None, False, None), ("m1", "text", 1, None, True, None)]
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE loose (v)")  # no type: no affinity
        insert_rows(connection, "t", COLUMNS, shared + mixed)
        insert_rows(connection, "loose", ("v",), [(False,), (0.0,)])
        back = connection.exec_driver_sql(
            "SELECT key, text, typeof(text), flag, typeof(flag), typeof(ratio) FROM t "
            "ORDER BY rowid"
        ).all()
        loose = connection.exec_driver_sql("SELECT typeof(v) FROM loose ORDER BY rowid").all()
    assert [tuple(row) for row in back] == [
        *((key, None, "null", 1, "integer", "null") for key, *_ in shared),
        ("m0", None, "null", 0, "integer", "null"),
        ("m1", "text", "text", 1, "integer", "null"),
    ]
    assert [row[0] for row in loose] == ["integer", "real"]


def test_a_time_since_the_epoch_is_written_as_its_datetime_would_be() -> None:
    rng = random.Random(0)
    instants = [0.0, 1_780_000_000.0, 1_780_000_000.9999996, 4_102_444_799.999999]
    instants += [rng.uniform(0, 4_102_444_800) for _ in range(2_000)]
    expected = [sqlite_instant(datetime.fromtimestamp(seconds, UTC)) for seconds in instants]
    assert sqlite_epoch_instants(instants) == expected
