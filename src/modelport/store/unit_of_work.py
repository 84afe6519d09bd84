"""The one way repositories talk to the database: read and write units of work.

Every repository (the registry today; keys, audit, deployments and jobs next) gets a
:class:`Database` and asks it for a ``read()`` or ``write()`` session, or runs a write with
:meth:`Database.retrying` when a race is expected. The schema is upgraded on first use, races
the database reports (unique keys, deadlocks, serialisation) are retried with jittered
backoff, and an unreachable database becomes one :class:`StorageUnavailableError` (503) whose
message hides host and driver; the cause goes to the log.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from modelport.errors import ConflictError, NotFoundError, StorageUnavailableError
from modelport.store.db import session_factory, upgrade
from modelport.store.tables import Base

T = TypeVar("T")
log = logging.getLogger("modelport.store")

UNREACHABLE = "the registry database is unreachable; retry shortly"
"""What clients are told: the host, driver and its message are for the log, not for them."""
RACE_ATTEMPTS = 50


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Upgraded on the first call, not here: a server must start (and answer 503) while
        # its database is unreachable, and recover by itself when it comes back.
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._writes: sessionmaker[Session] = session_factory(engine)
        # Reads need no write lock: on SQLite they begin DEFERRED and run beside a writer.
        self._reads: sessionmaker[Session] = session_factory(
            engine.execution_options(read_only=True)
        )

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction that may write; committed when the block ends without error."""
        with storage_errors():
            self._ensure_schema()
            with self._writes.begin() as session:
                yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with storage_errors():
            self._ensure_schema()
            with self._reads.begin() as session:
                yield session

    def retrying(self, work: Callable[[], T], conflict: str) -> T:
        """Run ``work`` (which opens its own write) again after a race the database reported.

        ``conflict`` is the 409 message when the race is lost every time.
        """
        for attempt in range(RACE_ATTEMPTS):
            try:
                return work()
            except (IntegrityError, OperationalError) as exc:
                if not is_race(exc):
                    raise
            time.sleep(random.uniform(0, min(0.001 * 2**attempt, 0.05)))
        raise ConflictError(conflict)

    def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        with self._schema_lock:
            if not self._schema_ready:
                upgrade(self.engine)
                self._schema_ready = True


@contextmanager
def storage_errors() -> Iterator[None]:
    """A database that cannot be reached is a 503 the caller may retry, not a crash."""
    try:
        yield
    except OperationalError as exc:
        if is_race(exc):
            raise  # a race the caller's retry loop handles
        log.warning("registry database unavailable: %s", str(exc.orig).strip())
        raise StorageUnavailableError(UNREACHABLE) from exc
    except InterfaceError as exc:
        log.warning("registry database connection lost: %s", str(exc.orig).strip())
        raise StorageUnavailableError(UNREACHABLE) from exc


Row = TypeVar("Row", bound=Base)


def named_row(
    s: Session,
    table: type[Row],
    name: str,
    what: str,
    *,
    missing_ok: bool = False,
    lock: bool = False,
) -> Row | None:
    """The row of ``table`` whose ``name`` is ``name`` (locked with ``lock``); a 404 naming
    ``what`` (``deployment``, ``experiment``) when there is none, unless ``missing_ok``."""
    query = select(table).where(getattr(table, "name") == name)  # noqa: B009
    row = s.scalars(query.with_for_update() if lock else query).one_or_none()
    if row is None and not missing_ok:
        raise NotFoundError(f"{what} {name!r} not found")
    return row


def is_race(exc: IntegrityError | OperationalError) -> bool:
    """Unique-constraint, deadlock and serialisation races are retried; anything else is not.

    A lock timeout (SQLite's "database is locked", PostgreSQL's statement_timeout) is not a
    race: the wait already lasted ``db_timeout_s``, so it is a 503 rather than another wait.
    """
    message = str(exc.orig).lower()
    return any(marker in message for marker in ("unique", "duplicate key", "deadlock", "serialize"))
