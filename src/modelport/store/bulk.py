"""Many rows into one SQLite table in a few multi-row statements.

The driver's ``executemany`` binds and steps row by row and takes the GIL back for every row;
a server writing from a thread then makes its event loop hand the GIL over at each one, which
cost a third of the requests served while the prediction log was on (bench/prediction_log.py).
Here each statement carries up to ``MAX_CHUNK_ROWS`` rows (``INSERT … VALUES (…), (…), …``):
the driver binds its parameters once, in C, and SQLite steps through all of them without the
GIL. Chunks are powers of two, so a handful of statements serve every batch size from the
driver's statement cache. (Sending the rows as one JSON array through ``json_each`` cost more
CPU: on SQLite 3.40, every ``json_extract`` of a column parsed the row's text again.)

A column that is NULL in every row of a chunk, or the same boolean, is written into the
statement as a literal instead of bound: the driver binds ``None`` and bools only after looking
for an adapter, about 1 µs a value against a few tens of ns for an int or a float, and a
prediction log row carries four or five of them (no deployment, slot, unit or error).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from itertools import chain

import numpy as np
from sqlalchemy import Connection

MAX_CHUNK_ROWS = 256


def sqlite_instant(at: datetime) -> str:
    """The text SQLAlchemy writes on SQLite for a naive UTC time and parses back. Times are
    made in UTC: the offset is cut off rather than converted (a third of the cost)."""
    return at.isoformat(" ", "microseconds")[:26]


def sqlite_epoch_instants(seconds: Sequence[float]) -> list[str]:
    """:func:`sqlite_instant` of each UTC time ``seconds`` after the epoch (``time.time()``),
    formatted by numpy for the whole batch: per value, Python's ``isoformat`` or an f-string
    cost 1-3 µs, a log row's largest share of its write. Microseconds are rounded as
    ``datetime.fromtimestamp`` rounds them (the fraction alone, half to even)."""
    times = np.asarray(seconds, dtype=np.float64)
    whole = np.floor(times)
    micro = np.round((times - whole) * 1_000_000)
    stamps = (whole.astype(np.int64) * 1_000_000 + micro.astype(np.int64)).astype("datetime64[us]")
    return [text.replace("T", " ") for text in np.datetime_as_string(stamps, unit="us").tolist()]


def insert_rows(
    connection: Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str | int | float | bool | None]],
    *,
    skip_conflicts: bool = False,
) -> None:
    """:func:`insert_columns` of ``rows`` given row by row (values in ``columns`` order)."""
    by_column = dict(zip(columns, zip(*rows, strict=True), strict=True)) if rows else {}
    insert_columns(connection, table, by_column, skip_conflicts=skip_conflicts)


def insert_columns(
    connection: Connection,
    table: str,
    columns: Mapping[str, Sequence[str | int | float | bool | None]],
    *,
    skip_conflicts: bool = False,
) -> None:
    """Insert the rows given column by column (``name -> values``, all of one length, times as
    :func:`sqlite_instant` text) on a SQLite ``connection``, in its transaction.
    ``skip_conflicts``: a row whose key is taken is left out (``ON CONFLICT DO NOTHING``);
    other constraint failures still fail the statement."""
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    names = tuple(columns)
    values_by_column = list(columns.values())
    count = len(values_by_column[0]) if values_by_column else 0
    largest = _largest_chunk(len(names), driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    start = 0
    while start < count:
        size = min(largest, 1 << (count - start).bit_length() - 1)
        chunk = [values[start : start + size] for values in values_by_column]
        literals = tuple(_shared_literal(values) for values in chunk)
        statement = _statement(table, names, size, skip_conflicts, literals)
        bound = [values for values, literal in zip(chunk, literals, strict=True) if literal is None]
        # through SQLAlchemy: its errors are the ones Database turns into a 503
        connection.exec_driver_sql(statement, tuple(chain.from_iterable(zip(*bound, strict=True))))
        start += size


def _largest_chunk(n_columns: int, max_parameters: int) -> int:
    """The largest power of two of rows per statement, within this SQLite's parameter limit
    (999 before SQLite 3.32, 32,766 since)."""
    rows = max(1, min(MAX_CHUNK_ROWS, max_parameters // n_columns))
    return 1 << rows.bit_length() - 1


def _shared_literal(column: Sequence[object]) -> str | None:
    """``NULL``, ``0`` or ``1`` when every value of ``column`` is None, or the same boolean
    (that very object: ``0`` or ``0.0`` beside ``False`` is bound as it is)."""
    first = column[0]
    if first is None:
        literal = "NULL"
    elif first is True or first is False:
        literal = "1" if first else "0"
    else:
        return None
    return literal if all(value is first for value in column) else None


@lru_cache(maxsize=256)
def _statement(
    table: str,
    columns: tuple[str, ...],
    rows: int,
    skip_conflicts: bool,
    literals: tuple[str | None, ...],
) -> str:
    """``literals``: per column, what the statement says instead of a parameter, if anything."""
    values = ", ".join([f"({', '.join(literal or '?' for literal in literals)})"] * rows)
    conflicts = " ON CONFLICT DO NOTHING" if skip_conflicts else ""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}{conflicts}"
