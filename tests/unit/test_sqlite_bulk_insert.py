"""Rows inserted on SQLite as one JSON array come back as given; a taken key is skipped only
when asked, and no other constraint is ever waived."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from modelport.store.bulk import insert_rows, sqlite_instant

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
