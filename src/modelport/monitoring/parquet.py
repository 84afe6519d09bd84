"""The prediction log as Parquet files too: for a lake, a notebook or a batch job that should
not read the serving database.

Entries gather in memory (in the writer's thread) and leave as one file per day they fall on
once ``max_rows`` have gathered or ``max_age_s`` has passed, and on a graceful stop. Files go
to ``<uri>/date=YYYY-MM-DD/<writer>-<n>.parquet`` (hive-style, so pyarrow, DuckDB and Spark
read the folder as one dataset partitioned by date); each is written under a temporary name
and renamed, so a reader never sees half a file. The database keeps every entry either way: a
crash loses at most the gathered rows, and only from the files.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import fsspec

from modelport.errors import ConfigurationError
from modelport.monitoring.predictions import NewEntry

log = logging.getLogger("modelport.monitoring")

MAX_HELD_FILES = 4
"""While the store refuses writes, at most this many files' worth of rows is held."""


class ParquetSink:
    def __init__(
        self, uri: str, storage_options: dict[str, Any], max_rows: int, max_age_s: float
    ) -> None:
        try:
            import pyarrow  # noqa: F401  (checked here: a missing extra fails at start-up)
        except ImportError as exc:
            raise ConfigurationError(
                "MODELPORT_PREDICTION_LOG_PARQUET_URI needs the parquet extra "
                "(pip install 'modelport[parquet]')"
            ) from exc
        self._fs, self._root = fsspec.core.url_to_fs(uri, **storage_options)
        self._writer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._max_rows = max_rows
        self._max_age_s = max_age_s
        self._held: list[NewEntry] = []
        self._since = time.monotonic()
        self._files = 0

    def add(self, entries: Sequence[NewEntry]) -> None:
        """Gather ``entries``; write files when enough rows or time have gathered."""
        self._held.extend(entries)
        if len(self._held) >= self._max_rows or time.monotonic() - self._since >= self._max_age_s:
            self.flush()

    def flush(self) -> None:
        """Write what has gathered; on failure keep it for the next try (bounded)."""
        if not self._held:
            self._since = time.monotonic()
            return
        try:
            for day, entries in _by_day(self._held).items():
                self._write(day, entries)
        except OSError as exc:
            limit = MAX_HELD_FILES * self._max_rows
            if len(self._held) > limit:
                log.error(
                    "prediction log: %d rows not written to Parquet (%s)",
                    len(self._held) - limit,
                    exc,
                )
                del self._held[: len(self._held) - limit]
            log.warning("prediction log: Parquet write failed (%s); will retry", exc)
            return
        self._held = []
        self._since = time.monotonic()

    def _write(self, day: str, entries: list[NewEntry]) -> None:
        import pyarrow.parquet as pq

        folder = f"{self._root.rstrip('/')}/date={day}"
        self._fs.makedirs(folder, exist_ok=True)
        self._files += 1
        path = f"{folder}/{self._writer}-{self._files:06d}.parquet"
        with self._fs.open(path + ".tmp", "wb") as file:
            pq.write_table(_table(entries), file, compression="zstd")
        self._fs.mv(path + ".tmp", path)


def _by_day(entries: list[NewEntry]) -> dict[str, list[NewEntry]]:
    days: defaultdict[str, list[NewEntry]] = defaultdict(list)
    for entry in entries:
        days[time.strftime("%Y-%m-%d", time.gmtime(entry.at))].append(entry)
    return days


def _table(entries: list[NewEntry]) -> Any:
    import pyarrow as pa

    types = {
        "request_id": pa.string(),
        "at": pa.timestamp("us", tz="UTC"),
        "protocol": pa.string(),
        "deployment": pa.string(),
        "slot": pa.string(),
        "model": pa.string(),
        "version": pa.int32(),
        "unit_id": pa.string(),
        "status": pa.int16(),
        "error": pa.string(),
        "latency_ms": pa.float64(),
        "rows": pa.int32(),
        "shadow": pa.bool_(),
        "inputs": pa.string(),
        "outputs": pa.string(),
    }
    columns = dict(zip(types, zip(*entries, strict=True), strict=True))
    columns["at"] = tuple(round(seconds * 1_000_000) for seconds in columns["at"])
    return pa.table({name: pa.array(columns[name], type) for name, type in types.items()})
