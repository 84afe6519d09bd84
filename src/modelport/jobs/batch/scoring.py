"""Batch scoring: every part of an input through one model version, into an output folder.

:func:`plan` resolves what a run will do (the version, the parts, the output columns, which
parts are already written); an engine scores the parts that are left, each with a
:class:`PartScorer` over a data plane's inference service, so batch rows go through the same
signature check, batcher and observers as online requests. The local engine scores in this
process; the Dask engine (:mod:`modelport.jobs.batch.dask_engine`) sends one task per part to
a cluster. A part's output appears whole or not at all, so a run that stops is resumed by
running it again.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import fsspec
import pyarrow as pa

from modelport.codecs import Decoded
from modelport.config import Settings
from modelport.errors import (
    ConfigurationError,
    ConflictError,
    InvalidInputError,
)
from modelport.inference import InferenceContext, InferenceService, Transport
from modelport.jobs.batch.columns import OutputLayout, input_arrays
from modelport.jobs.batch.parts import FileFormat, Part, find_parts, input_schema, record_batches
from modelport.jobs.batch.writing import (
    MANIFEST,
    PENDING_SUFFIX,
    SUCCESS,
    PartWriter,
    part_path,
    read_json,
    write_json,
)
from modelport.plane import DataPlane
from modelport.registry import Registry, VersionRecord
from modelport.runtimes.signature import Signature

Progress = Callable[[int], None]
"""Told the rows of each chunk as it is predicted (of each part, on Dask)."""
READ_ROWS = 65_536
"""Rows read, assembled and written at a time (``chunk_rows`` only sets the model's share):
a file call per 1,024 rows cost more than a small model's prediction did
(bench/batch_scoring.py). Memory is bounded by this, a Parquet row group and
``PARTS_IN_FLIGHT``, not the input."""
PARTS_IN_FLIGHT = 2
"""Parts a process scores at once."""


@dataclass(frozen=True, slots=True)
class BatchJob:
    model: str
    """``name``, ``name/3`` or ``name@alias``: resolved once, so one run is one version."""
    input: str
    output: str
    passthrough: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    """Model outputs to write; none named: all."""
    format: FileFormat = FileFormat.PARQUET
    chunk_rows: int = 1024
    overwrite: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything a part needs, whichever process scores it (picklable for Dask)."""

    job: BatchJob
    name: str
    version: int
    signature: Signature
    layout: OutputLayout
    parts: tuple[Part, ...]
    todo: tuple[Part, ...]
    run_id: str = field(default_factory=lambda: secrets.token_hex(6))

    @property
    def address(self) -> str:
        return f"{self.name}/{self.version}"

    def rows_total(self) -> int | None:
        """Rows left to score, when every part knows its count (Parquet)."""
        counts = [part.rows for part in self.todo]
        return None if any(c is None for c in counts) else sum(c or 0 for c in counts)


@dataclass(frozen=True, slots=True)
class BatchSummary:
    model: str
    version: int
    parts: int
    parts_skipped: int
    rows: int
    seconds: float
    """Scoring alone, from the model loaded to the last part written."""
    output: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "parts": self.parts,
            "parts_skipped": self.parts_skipped,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "rows_per_s": round(self.rows / self.seconds) if self.seconds > 0 else None,
            "output": self.output,
        }


def filesystem(settings: Settings, url: str) -> tuple[Any, str]:
    fs, root = fsspec.core.url_to_fs(url, **settings.storage_options(url))
    return fs, root.rstrip("/")


def plan(settings: Settings, registry: Registry, job: BatchJob) -> Plan:
    """Resolve the version and the parts, and claim the output folder for this run (or find
    the run it resumes)."""
    return plan_for(settings, registry.resolve(job.model), job)


def plan_for(settings: Settings, record: VersionRecord, job: BatchJob) -> Plan:
    """:func:`plan` for a version already chosen (the one a server answers with now)."""
    fs_in, root_in = filesystem(settings, job.input)
    parts = find_parts(fs_in, root_in)
    fs_out, root_out = filesystem(settings, job.output)
    manifest: dict[str, Any] = {
        "model": record.name,
        "version": record.version,
        "format": job.format.value,
        "parts": [part.identity() for part in parts],
    }
    # A folder of another model, version or input is refused before any input file is opened:
    # an exit right after arrow's CSV reader has been dropped can abort the process while the
    # reader's read-ahead task still runs (apache/arrow#43604), and a refusal is such an exit.
    _held_by_another(fs_out, root_out, manifest, job.overwrite)
    schema = input_schema(fs_in, parts[0], record.signature)
    layout = OutputLayout.of(record.signature, schema, job.passthrough, job.outputs, job.format)
    manifest["columns"] = layout.schema.names
    _claim(fs_out, root_out, manifest, job.overwrite)
    todo = tuple(p for p in parts if not fs_out.exists(part_path(root_out, p, job.format)))
    return Plan(job, record.name, record.version, record.signature, layout, tuple(parts), todo)


def _claim(fs: Any, root: str, manifest: dict[str, Any], overwrite: bool) -> None:
    fs.makedirs(root, exist_ok=True)
    if _held_by_another(fs, root, manifest, overwrite):
        for path in _listing(fs, root):
            fs.rm(path, recursive=True)
    for path in _listing(fs, root):
        if path.endswith(PENDING_SUFFIX) or path.endswith(SUCCESS):
            fs.rm(path)  # an interrupted part, or the mark of a run about to change
    write_json(fs, f"{root}/{MANIFEST}", manifest)


def _held_by_another(fs: Any, root: str, manifest: dict[str, Any], overwrite: bool) -> bool:
    """Whether the folder holds files of another run than ``manifest`` (compared on the keys it
    has) or files of no run; a :class:`ConflictError` unless ``overwrite``."""
    found = read_json(fs, f"{root}/{MANIFEST}")
    if found is None:
        other = bool(_listing(fs, root))
    else:
        other = not isinstance(found, dict) or any(
            found.get(key) != value for key, value in manifest.items()
        )
    if other and not overwrite:
        what = "another run (other model version, input or columns)"
        raise ConflictError(
            f"{root} holds {what if found is not None else 'other files'}; choose another "
            "output folder, or --overwrite to replace it"
        )
    return other


def _listing(fs: Any, root: str) -> list[str]:
    """What the folder holds; nothing when it does not exist (an object store has no empty
    folders)."""
    try:
        listed: list[str] = fs.ls(root, detail=False)
    except FileNotFoundError:
        return []
    return listed


def finish(settings: Settings, plan: Plan, rows: int, seconds: float) -> BatchSummary:
    """Mark the output complete once every part is there."""
    job = plan.job
    summary = BatchSummary(
        plan.name,
        plan.version,
        len(plan.parts),
        len(plan.parts) - len(plan.todo),
        rows,
        seconds,
        job.output,
    )
    fs_out, root_out = filesystem(settings, job.output)
    write_json(fs_out, f"{root_out}/{SUCCESS}", summary.to_dict())
    return summary


class PartScorer:
    """Scores parts through one inference service: reading the next chunk and writing the last
    one overlap with the model's work."""

    def __init__(self, settings: Settings, plan: Plan, service: InferenceService) -> None:
        self._plan = plan
        self._service = service
        self._fs_in, _ = filesystem(settings, plan.job.input)
        self._fs_out, self._root_out = filesystem(settings, plan.job.output)

    async def score(self, part: Part, progress: Progress | None = None) -> int:
        """Score one part into its output file; its row count."""
        plan = self._plan
        path = part_path(self._root_out, part, plan.job.format)
        layout = plan.layout
        writer = await asyncio.to_thread(
            PartWriter,
            self._fs_out,
            path,
            layout.schema,
            plan.job.format,
            layout.dictionary_columns(),
        )
        try:
            rows = await self._score_into(part, writer, progress)
        except BaseException:
            await asyncio.to_thread(writer.abort)
            raise
        await asyncio.to_thread(writer.commit)
        return rows

    async def score_all(self, parts: Sequence[Part], progress: Progress | None = None) -> int:
        """Score ``parts``, ``PARTS_IN_FLIGHT`` at a time: a part's first read and last write
        then overlap another part's predictions instead of leaving the model idle."""
        turns = asyncio.Semaphore(PARTS_IN_FLIGHT)

        async def one(part: Part) -> int:
            async with turns:
                return await self.score(part, progress)

        try:
            async with asyncio.TaskGroup() as group:
                scored = [group.create_task(one(part)) for part in parts]
        except BaseExceptionGroup as failed:  # the others were cancelled: report the first
            raise failed.exceptions[0] from None
        return sum(task.result() for task in scored)

    async def _score_into(self, part: Part, writer: PartWriter, progress: Progress | None) -> int:
        plan = self._plan
        read_rows = max(plan.job.chunk_rows, READ_ROWS)
        batches = record_batches(self._fs_in, part, read_rows, plan.signature)
        reading = asyncio.create_task(asyncio.to_thread(_next, batches))
        writing: asyncio.Task[None] | None = None
        rows = 0
        try:
            while (batch := await reading) is not None:
                reading = asyncio.create_task(asyncio.to_thread(_next, batches))
                if batch.num_rows == 0:
                    continue
                table = await self._predict(part, batch, rows, progress)
                if writing is not None:
                    await writing
                writing = asyncio.create_task(asyncio.to_thread(writer.write, table))
                rows += batch.num_rows
            if writing is not None:
                await writing
        finally:
            reading.cancel()
        return rows

    async def _predict(
        self, part: Part, batch: pa.RecordBatch, start: int, progress: Progress | None
    ) -> pa.Table:
        """A batch read at once is one request to the service (routed, checked against the
        signature and observed once), predicted ``chunk_rows`` at a time."""
        plan = self._plan
        ctx = InferenceContext(
            f"{plan.run_id}:{part.index}:{start}", Transport.BATCH, admitted=True
        )
        chunks = _Chunks(plan.job.chunk_rows, progress)
        try:
            arrays, pointers = input_arrays(batch, plan.signature, plan.layout.passthrough)
            decoded = Decoded(arrays, pointers, None)
            answer = await self._service.infer(
                ctx, plan.address, None, lambda _s: decoded, batch.nbytes, chunks
            )
        except InvalidInputError as exc:
            where = f"{part.path} ({part.name}), rows {start}-{start + batch.num_rows - 1}"
            raise InvalidInputError(f"{where}: {exc.detail}", errors=exc.errors) from exc
        return plan.layout.table(batch, answer.outputs, plan.version)


@dataclass(slots=True)
class _Chunks:
    """The :class:`~modelport.inference.service.Pieces` of a batch: ``rows`` at a time, each
    told to the run's progress."""

    rows: int
    progress: Progress | None
    told: int = 0

    async def done(self, rows: int, total: int) -> None:
        if self.progress is not None:
            self.progress(rows - self.told)
        self.told = rows


def _next(chunks: Iterator[pa.RecordBatch]) -> pa.RecordBatch | None:
    return next(chunks, None)


@asynccontextmanager
async def part_scorer(settings: Settings, plan: Plan) -> AsyncIterator[PartScorer]:
    """A data plane with the plan's model loaded and its service started, for as long as
    the parts take; whichever engine scores them builds one per process."""
    async with DataPlane(settings, [plan.address]).started() as service:
        yield PartScorer(settings, plan, service)


async def score_locally(
    settings: Settings, plan: Plan, progress: Progress | None
) -> tuple[int, float]:
    """The local engine: every part left, in this process, one after another; the rows
    scored and the seconds scoring took (the model loaded)."""
    if not plan.todo:
        return 0, 0.0
    async with part_scorer(settings, plan) as scorer:
        started = time.perf_counter()
        rows = await scorer.score_all(plan.todo, progress)
        return rows, time.perf_counter() - started


class Engine(StrEnum):
    LOCAL = "local"
    """Every part in this process."""
    DASK = "dask"
    """One task per part on a Dask cluster (:mod:`modelport.jobs.batch.dask_engine`)."""


Scoring = Callable[[Settings, Plan, Progress | None], tuple[int, float]]
"""An engine at work: scores a plan's parts left; the rows and the seconds scoring took."""


def _engine_of(engine: Engine, scheduler: str | None) -> Scoring:
    """The engine asked for, checked before a run claims its output folder."""
    if engine is Engine.LOCAL:
        if scheduler:
            raise ConfigurationError("a scheduler address is for the dask engine (--engine dask)")
        return lambda settings, plan, progress: asyncio.run(score_locally(settings, plan, progress))
    if not scheduler:
        raise ConfigurationError(
            "the dask engine needs the address of a Dask scheduler (--scheduler tcp://host:8786)"
        )
    try:  # an extra: the local engine runs without it
        from modelport.jobs.batch.dask_engine import score_on_cluster
    except ImportError as exc:
        raise ConfigurationError(
            f"the dask engine needs dask.distributed (pip install 'modelport[dask]'): {exc}"
        ) from exc
    return functools.partial(score_on_cluster, scheduler=scheduler)


def run(
    settings: Settings,
    job: BatchJob,
    progress: Callable[[Plan], Progress | None] | None = None,
    engine: Engine = Engine.LOCAL,
    scheduler: str | None = None,
) -> BatchSummary:
    """Plan, score with ``engine``, finish: what ``modelport batch`` does. ``progress`` is
    handed the plan and returns what hears of each chunk (of each part, on Dask);
    ``scheduler``: the Dask scheduler's address, for the dask engine."""
    score = _engine_of(engine, scheduler)
    registry = Registry.from_settings(settings)
    try:
        planned = plan(settings, registry, job)
    finally:
        registry.close()
    following = progress(planned) if progress else None
    rows, seconds = score(settings, planned, following)
    return finish(settings, planned, rows, seconds)
