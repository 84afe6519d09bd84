"""`modelport schedules add|list|pause|resume|remove`: batch runs on a cron schedule, kept in
the registry. Servers and ``modelport worker`` processes fire them (one job per time, however
many look); a run missed while nothing ran is made up once."""

from __future__ import annotations

from typing import Annotated

import typer

from modelport.cli import output
from modelport.cli.batch import (
    ChunkRowsOption,
    FormatOption,
    OutputFormat,
    OutputsOption,
    PassthroughOption,
    names,
)
from modelport.cli.output import JsonFlag
from modelport.cli.sessions import opened_registry
from modelport.jobs.schedules import Schedule, ScheduleStore
from modelport.registry import Registry
from modelport.registry.audit import Actor

app = typer.Typer(no_args_is_help=True, help="Batch runs on a cron schedule.")


@app.command("add")
def schedules_add(
    name: Annotated[str, typer.Argument(help="The schedule's name.")],
    model: Annotated[str, typer.Option("--model", "-m", help="name, name/3 or name@alias")],
    cron: Annotated[
        str, typer.Option(help="When, as five cron fields: '0 2 * * *' is every day at 02:00.")
    ],
    input: Annotated[
        str, typer.Option("--input", "-i", help="A .parquet or .csv file or folder (or s3://…).")
    ],
    output_folder: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help="Folder of each run; {date} and {time} become the time the run was due "
            "(s3://bucket/scores/{date}).",
        ),
    ],
    passthrough: PassthroughOption = "",
    outputs: OutputsOption = "",
    format: FormatOption = OutputFormat.PARQUET,
    chunk_rows: ChunkRowsOption = 1024,
    timezone: Annotated[str, typer.Option(help="Time zone the cron fields are read in.")] = "UTC",
    as_json: JsonFlag = False,
) -> None:
    """Score files with a model on a schedule; each run replaces what its folder held from a
    run on other input (the same input and version: nothing to redo)."""
    options = {
        "input": input,
        "output": output_folder,
        "passthrough": list(names(passthrough)),
        "outputs": list(names(outputs)),
        "format": format.value,
        "chunk_rows": chunk_rows,
        "overwrite": True,
    }
    with opened_registry() as registry:
        registry.resolve(model)
        schedule = _store(registry).add(
            name, model, cron, options, timezone=timezone, created_by=Actor.local().name
        )
    if as_json:
        output.emit_json(schedule.to_dict())
        return
    output.console.print(f"schedule {name}: next run {schedule.next_run_at.isoformat()}")


@app.command("list")
def schedules_list(as_json: JsonFlag = False) -> None:
    """Every schedule, its next run and its last job."""
    with opened_registry() as registry:
        schedules = _store(registry).schedules()
    if as_json:
        output.emit_json({"schedules": [s.to_dict() for s in schedules]})
        return
    output.table(
        "Schedules",
        ["name", "model", "cron", "next run", "last run", "last job"],
        [_row(s) for s in schedules],
    )


@app.command("pause")
def schedules_pause(name: Annotated[str, typer.Argument(help="The schedule's name.")]) -> None:
    """Stop firing until resumed."""
    with opened_registry() as registry:
        _store(registry).set_enabled(name, False)
    output.console.print(f"schedule {name}: paused")


@app.command("resume")
def schedules_resume(name: Annotated[str, typer.Argument(help="The schedule's name.")]) -> None:
    """Fire again from the next time due (times while paused are skipped)."""
    with opened_registry() as registry:
        schedule = _store(registry).set_enabled(name, True)
    output.console.print(f"schedule {name}: next run {schedule.next_run_at.isoformat()}")


@app.command("remove")
def schedules_remove(name: Annotated[str, typer.Argument(help="The schedule's name.")]) -> None:
    """Delete a schedule (jobs it queued stay)."""
    with opened_registry() as registry:
        _store(registry).remove(name)
    output.console.print(f"schedule {name}: removed")


def _store(registry: Registry) -> ScheduleStore:
    return ScheduleStore(registry.database)


def _row(schedule: Schedule) -> list[str]:
    state = "" if schedule.enabled else " (paused)"
    last = schedule.last_run_at
    return [
        schedule.name,
        schedule.model,
        f"{schedule.cron} {schedule.timezone}",
        f"{schedule.next_run_at:%Y-%m-%d %H:%M}{state}",
        "" if last is None else f"{last:%Y-%m-%d %H:%M}",
        schedule.last_job_id or "",
    ]
