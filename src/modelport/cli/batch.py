"""`modelport batch`: score Parquet or CSV files with a registered model, into a folder.

The run streams record batches, so memory stays flat whatever the input's size; it shows a
progress bar with rows per second on stderr, and running the same command again after an
interruption skips the parts already written. ``--engine dask --scheduler tcp://…`` scores
the parts on a Dask cluster instead, one task each.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated

import typer

from modelport.cli import output
from modelport.cli.output import JsonFlag
from modelport.cli.sessions import current_settings
from modelport.errors import ConfigurationError


class OutputFormat(StrEnum):
    PARQUET = "parquet"
    CSV = "csv"


# the options of a batch run wherever one is asked for: here, as a job, on a schedule
PassthroughOption = Annotated[
    str, typer.Option(help="Input columns to copy beside the predictions, e.g. row_id,day.")
]
OutputsOption = Annotated[
    str, typer.Option(help="Model outputs to write, e.g. label (default: every output).")
]
FormatOption = Annotated[OutputFormat, typer.Option(help="Output files.")]
ChunkRowsOption = Annotated[int, typer.Option(min=1, help="Rows sent to the model at a time.")]


class EngineName(StrEnum):
    LOCAL = "local"
    DASK = "dask"


def batch(
    model: Annotated[str, typer.Option("--model", "-m", help="name, name/3 or name@alias")],
    input: Annotated[
        str,
        typer.Option(
            "--input",
            "-i",
            help="A .parquet or .csv file (with a header row), or a folder of them; "
            "local or any fsspec URL such as s3://bucket/prefix.",
        ),
    ],
    output_folder: Annotated[
        str,
        typer.Option(
            "--output", "-o", help="Folder for part-NNNNN files, _manifest.json and _SUCCESS."
        ),
    ],
    passthrough: PassthroughOption = "",
    outputs: OutputsOption = "",
    format: FormatOption = OutputFormat.PARQUET,
    chunk_rows: ChunkRowsOption = 1024,
    overwrite: Annotated[
        bool, typer.Option(help="Replace what the output folder holds from another run.")
    ] = False,
    engine: Annotated[
        EngineName,
        typer.Option(help="Score in this process, or one task per part on a Dask cluster."),
    ] = EngineName.LOCAL,
    scheduler: Annotated[
        str | None,
        typer.Option(help="The Dask scheduler's address, e.g. tcp://host:8786 (--engine dask)."),
    ] = None,
    json: JsonFlag = False,
) -> None:
    """Score files with a model; run it again to resume after an interruption."""
    with output.reporting_errors({"conflict": "pass --overwrite, or another --output"}):
        try:  # pyarrow is an extra; every other command starts without importing it
            from modelport.jobs.batch.parts import FileFormat
            from modelport.jobs.batch.scoring import BatchJob, Engine, Plan, run
        except ImportError as exc:
            raise ConfigurationError(
                f"batch scoring needs pyarrow (pip install 'modelport[batch]'): {exc}"
            ) from exc
        job = BatchJob(
            model,
            input,
            output_folder,
            names(passthrough),
            names(outputs),
            FileFormat(format.value),
            chunk_rows,
            overwrite,
        )
        settings = current_settings()
        with output.rows_progress(quiet=json) as bar:

            def follow(plan: Plan) -> Callable[[int], None]:
                task = bar.add_task(
                    f"{plan.address}: {len(plan.todo)} of {len(plan.parts)} parts",
                    total=plan.rows_total(),
                )
                return lambda rows: bar.advance(task, rows)

            summary = run(settings, job, follow, Engine(engine.value), scheduler)
    if json:
        output.emit_json(summary.to_dict())
        return
    skipped = f", {summary.parts_skipped} already written" if summary.parts_skipped else ""
    output.console.print(
        f"scored {summary.rows:,} rows with {summary.model}/{summary.version} into "
        f"{summary.output} ({summary.parts} parts{skipped})"
    )


def names(listed: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in listed.split(",") if name.strip())
