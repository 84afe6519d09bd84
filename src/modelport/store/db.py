"""Database engine: one per process, migrated to the latest schema on first use.

Every wait on the database is bounded by one timeout: a server that accepts connections but
never answers, or a lock held forever, must become an error the caller can retry, not a
frozen registry.
"""

from __future__ import annotations

import math
import sqlite3
import time
from pathlib import Path
from typing import Any

import filelock
from sqlalchemy import Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD_REVISION = "0009"
"""The newest migration; a test checks it against Alembic's own view of the scripts.

Knowing it lets a process that finds the schema current skip importing Alembic at all
(about 10 MiB of every server's memory)."""
_PG_MIGRATION_LOCK = 7_114_201  # arbitrary advisory-lock key owned by modelport
DEFAULT_TIMEOUT_S = 10.0
PAGE_SIZE = 16_384
"""Bytes per page of a new SQLite file (SQLite's default is 4,096). The prediction log writes
thousands of rows a transaction, and WAL mode writes every page it changes with system calls of
their own: 16 KiB pages took those calls from 0.35 to 0.16 a row and the insert from about 2.6
to 2.3 µs of CPU a row. A file keeps the size it was made with."""


def create_db_engine(
    url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, migrate: bool = True
) -> Engine:
    """An engine with the right per-dialect settings and timeouts; unless ``migrate`` is
    false (the caller upgrades on first use), the schema is upgraded to head now."""
    if url.startswith("sqlite"):
        database = url.split("///", 1)[1] if "///" in url else ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # pysqlite's timeout is SQLite's busy timeout: how long a writer queues for the lock
        engine = create_engine(url, connect_args={"timeout": timeout_s, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = create_engine(
            url,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=10,
            pool_timeout=timeout_s,
            connect_args=_postgres_timeouts(url, timeout_s),
        )
    if migrate:
        upgrade(engine)
    return engine


def _postgres_timeouts(url: str, timeout_s: float) -> dict[str, Any]:
    """libpq parameters bounding every wait; any the URL sets itself are left alone.

    ``connect_timeout`` covers the whole handshake, so a listener that accepts TCP and never
    speaks fails in time (libpq's minimum is 2 s). ``statement_timeout`` stops a query the
    server runs or waits on too long. ``tcp_user_timeout`` and keepalives close a connection
    whose peer vanished (unacknowledged data, silent link) instead of waiting on it forever.
    """
    if not url.startswith("postgresql"):
        return {}
    millis = max(1, int(timeout_s * 1000))
    wanted: dict[str, Any] = {
        "connect_timeout": max(2, math.ceil(timeout_s)),
        "options": f"-c statement_timeout={millis}",
        "tcp_user_timeout": millis,
        "keepalives": 1,
        "keepalives_idle": max(1, math.ceil(timeout_s)),
        "keepalives_interval": max(1, math.ceil(timeout_s / 3)),
        "keepalives_count": 3,
    }
    given = make_url(url).query
    return {key: value for key, value in wanted.items() if key not in given}


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling is disabled so that "begin" below is ours.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA page_size={PAGE_SIZE}")  # a new file only: set before WAL mode
    _write_ahead_logging(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _write_ahead_logging(cursor: Any) -> None:
    """WAL mode, which the file keeps once any connection has set it. Even asking for the mode
    the file already has can be refused with "database is locked" at once, without the busy
    timeout's wait, while another process is in the middle of opening or migrating the file:
    ask again until the busy timeout would have given up."""
    deadline = time.monotonic() + DEFAULT_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sqlite_begin(connection: Connection) -> None:
    """Writers take the lock at BEGIN so two of them queue instead of failing mid-transaction;
    read-only sessions begin DEFERRED so WAL lets them read beside a writer."""
    read_only = connection.get_execution_options().get("read_only", False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _is_current(engine: Engine) -> bool:
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return False
        current = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        return [row[0] for row in current] == [HEAD_REVISION]


def upgrade(engine: Engine) -> None:
    """Apply pending migrations, serialised across processes."""
    if _is_current(engine):
        return
    if engine.dialect.name == "sqlite":
        database = engine.url.database or ""
        lock_path = f"{database}.migrate.lock" if database not in ("", ":memory:") else None
        if lock_path is None:
            _run_upgrade(engine)
            return
        with filelock.FileLock(lock_path, timeout=60):
            _run_upgrade(engine)
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        try:
            _run_upgrade(engine)
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_MIGRATION_LOCK})
            connection.commit()


def _run_upgrade(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config

    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # a migration may rewrite big tables: its DDL is not bound by statement_timeout
            connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
