"""The pieces a batch input splits into: one per CSV file, one per Parquet row group.

A part is the unit of work (a Dask task, a line in the progress bar) and of resuming: its
output file exists only once it was written whole. Parts are numbered in the sorted order
of their files, so the same input splits the same way every time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from modelport.errors import InvalidInputError
from modelport.runtimes.signature import STRING, Signature, SignatureKind


class FileFormat(StrEnum):
    PARQUET = "parquet"
    CSV = "csv"


CSV_BLOCK_BYTES = 1 << 20
"""What arrow reads of a CSV file at a time (its default), and infers column types from."""

SUFFIXES = {".parquet": FileFormat.PARQUET, ".pq": FileFormat.PARQUET, ".csv": FileFormat.CSV}


@dataclass(frozen=True, slots=True)
class Part:
    index: int
    path: str
    format: FileFormat
    row_group: int | None
    """The Parquet row group this part reads; None: the whole file."""
    size: int
    version: str
    """What changes when the file does (its modification time or ETag)."""
    rows: int | None
    """Known up front for Parquet (from the footer), not for CSV."""

    @property
    def name(self) -> str:
        return f"part-{self.index:05d}"

    def identity(self) -> dict[str, Any]:
        """What a resumed run must find unchanged to trust the parts written before."""
        return {
            "path": self.path,
            "row_group": self.row_group,
            "size": self.size,
            "version": self.version,
        }


def find_parts(fs: Any, root: str) -> list[Part]:
    """Every part under ``root`` (a file, or a folder searched recursively)."""
    if fs.isdir(root):
        files = sorted(p for p in fs.find(root) if _format_of(p) is not None)
        if not files:
            suffixes = ", ".join(SUFFIXES)
            raise InvalidInputError(f"no input files ({suffixes}) under {root}", pointer="/input")
    elif fs.exists(root):
        if _format_of(root) is None:
            suffixes = ", ".join(SUFFIXES)
            raise InvalidInputError(
                f"{root}: unknown file type; batch inputs end in {suffixes}", pointer="/input"
            )
        files = [root]
    else:
        raise InvalidInputError(f"no such input: {root}", pointer="/input")
    parts: list[Part] = []
    for path in files:
        info = fs.info(path)
        size, version = int(info.get("size") or 0), _version(info)
        found = _format_of(path)
        assert found is not None
        for group, rows in _row_groups(fs, path, found):
            parts.append(Part(len(parts), path, found, group, size, version, rows))
    return parts


def record_batches(
    fs: Any, part: Part, rows: int, signature: Signature
) -> Iterator[pa.RecordBatch]:
    """The part's rows, ``rows`` at a time (CSV blocks may end a chunk early)."""
    if part.format is FileFormat.PARQUET:
        with fs.open(part.path, "rb") as file:
            groups = [] if part.row_group is None else [part.row_group]
            # one thread per part: the parts in flight are the parallelism, and pyarrow's
            # column threads only added their hand-offs (a fifth of a small read's CPU)
            parquet = pq.ParquetFile(file)
            yield from parquet.iter_batches(batch_size=rows, row_groups=groups, use_threads=False)
        return
    # a local file is opened by arrow itself: its CSV read-ahead thread then never calls back
    # into Python, so a run that fails mid-part can exit cleanly (see input_schema)
    local = isinstance(fs, LocalFileSystem)
    with pa.OSFile(part.path, "rb") if local else fs.open(part.path, "rb") as file:
        reader = pacsv.open_csv(file, convert_options=_csv_types(signature))
        for block in reader:
            for start in range(0, block.num_rows, rows):
                yield block.slice(start, rows)


def _row_groups(fs: Any, path: str, found: FileFormat) -> list[tuple[int | None, int | None]]:
    """(row group, its rows) of each part of one file."""
    if found is FileFormat.CSV:
        return [(None, None)]
    with fs.open(path, "rb") as file:
        try:
            metadata = pq.ParquetFile(file).metadata
        except pa.ArrowInvalid as exc:
            raise InvalidInputError(f"{path} is not a Parquet file: {exc}") from exc
    groups: list[tuple[int | None, int | None]] = [
        (i, metadata.row_group(i).num_rows) for i in range(metadata.num_row_groups)
    ]
    return groups or [(None, 0)]


def _csv_types(signature: Signature) -> pacsv.ConvertOptions:
    """Text inputs stay text even when they look like numbers ("75001")."""
    if signature.kind is SignatureKind.TENSOR:
        return pacsv.ConvertOptions()
    types = {spec.name: pa.string() for spec in signature.inputs if spec.dtype == STRING}
    return pacsv.ConvertOptions(column_types=types)


def _format_of(path: str) -> FileFormat | None:
    lowered = path.lower()
    return next((f for suffix, f in SUFFIXES.items() if lowered.endswith(suffix)), None)


def _version(info: dict[str, Any]) -> str:
    for key in ("ETag", "etag", "mtime", "LastModified", "last_modified"):
        if info.get(key) is not None:
            return str(info[key])
    return ""


def input_schema(fs: Any, part: Part, signature: Signature) -> pa.Schema:
    """The columns a part's file has, read from its footer or its first CSV block."""
    with fs.open(part.path, "rb") as file:
        if part.format is FileFormat.PARQUET:
            return pq.ParquetFile(file).schema_arrow
        first_block = file.read(CSV_BLOCK_BYTES)
        if file.read(1):  # more follows: keep whole rows, as arrow's own first block would
            first_block = first_block[: first_block.rfind(b"\n") + 1] or first_block
    # From bytes in memory, not the Python file: arrow reads ahead on a thread of its own,
    # which would call back into Python for the next block; a run refused right after this
    # (its folder holds another run) could exit while that thread waited for the GIL, and
    # Python ends such a thread in a way C++ answers with "terminate called" (SIGABRT).
    options = pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES)
    head = pa.BufferReader(first_block)
    try:
        reader = pacsv.open_csv(head, read_options=options, convert_options=_csv_types(signature))
    except pa.ArrowInvalid as exc:
        raise InvalidInputError(f"{part.path} is not a CSV file with a header: {exc}") from exc
    schema = reader.schema
    # Read to the end before the reader is dropped, so its read-ahead task on arrow's IO
    # threads is done: an exit right after (a layout mistake) cannot then abort the process
    # while that task still runs (apache/arrow#43604). A bad row is reported by the run that
    # reaches it, with its part and rows.
    with contextlib.suppress(pa.ArrowInvalid):
        for _ in reader:
            pass
    return schema
