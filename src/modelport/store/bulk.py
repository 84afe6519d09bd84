"""Many rows into one SQLite table in one statement, run without the GIL.

The driver's ``executemany`` binds and steps row by row and takes the GIL back for every row;
a server writing from a thread then makes its event loop hand the GIL over at each one, which
cost a third of the requests served while the prediction log was on (bench/prediction_log.py).
Here the rows travel as one JSON array that SQLite unpacks itself (``json_each``) inside one
step, during which the driver has let go of the GIL.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime

import orjson
from sqlalchemy import Connection


def sqlite_instant(at: datetime) -> str:
    """The text SQLAlchemy writes on SQLite for a naive UTC time and parses back. Times are
    made in UTC: the offset is cut off rather than converted (a third of the cost)."""
    return at.isoformat(" ", "microseconds")[:26]


def insert_rows(
    connection: Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str | int | float | bool | None]],
    *,
    skip_conflicts: bool = False,
) -> None:
    """Insert ``rows`` (values in ``columns`` order, times as :func:`sqlite_instant` text) on a
    SQLite ``connection``, in its transaction. ``skip_conflicts``: a row whose key is taken is
    left out (``ON CONFLICT DO NOTHING``); other constraint failures still fail the statement.
    """
    statement = _statement(table, tuple(columns), skip_conflicts)
    # through SQLAlchemy, once per batch: its errors are the ones Database turns into a 503
    connection.exec_driver_sql(statement, (orjson.dumps(rows).decode(),))


@functools.cache
def _statement(table: str, columns: tuple[str, ...], skip_conflicts: bool) -> str:
    values = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(columns)))
    # "WHERE true": SQLite needs it to read ON CONFLICT after INSERT … SELECT
    conflicts = " WHERE true ON CONFLICT DO NOTHING" if skip_conflicts else ""
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} FROM json_each(?){conflicts}"
    )
