"""Output files written whole or not at all, and the run's manifest beside them.

A part is written under a temporary name and renamed when complete, so an interrupted run
leaves no file that looks finished: the next run skips exactly the parts that exist. The
manifest (``_manifest.json``) records what the parts were made from (model version, input
files, columns); a run into a folder whose manifest says otherwise is refused rather than
mixing two runs' rows. ``_SUCCESS`` appears when every part is there.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from modelport.jobs.batch.parts import FileFormat, Part

MANIFEST = "_manifest.json"
SUCCESS = "_SUCCESS"
PENDING_SUFFIX = ".inprogress"


def part_path(root: str, part: Part, format: FileFormat) -> str:
    return f"{root}/{part.name}.{format.value}"


class PartWriter:
    """One part's output file: ``write`` tables, then ``commit`` (or ``abort``)."""

    def __init__(
        self,
        fs: Any,
        path: str,
        schema: pa.Schema,
        format: FileFormat,
        dictionary: list[str] | None = None,
    ) -> None:
        """``dictionary``: the Parquet columns to dictionary-encode."""
        self._fs = fs
        self._path = path
        self._pending = path + PENDING_SUFFIX
        self._file = fs.open(self._pending, "wb")
        self._writer: pq.ParquetWriter | pacsv.CSVWriter
        if format is FileFormat.PARQUET:
            self._writer = pq.ParquetWriter(self._file, schema, use_dictionary=dictionary or False)
        else:
            self._writer = pacsv.CSVWriter(self._file, schema)

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table)

    def commit(self) -> None:
        self._close()
        self._fs.mv(self._pending, self._path)

    def abort(self) -> None:
        self._close()
        self._fs.rm(self._pending)

    def _close(self) -> None:
        self._writer.close()
        self._file.close()


def read_json(fs: Any, path: str) -> dict[str, Any] | None:
    if not fs.exists(path):
        return None
    with fs.open(path, "rb") as file:
        loaded: dict[str, Any] = json.load(file)
        return loaded


def write_json(fs: Any, path: str, data: dict[str, Any]) -> None:
    with fs.open(path, "wb") as file:
        file.write(json.dumps(data, indent=2).encode())
