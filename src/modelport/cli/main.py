"""The `modelport` command line: this module only assembles the commands of each noun."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from modelport import __version__
from modelport.cli import (
    aliases,
    audit,
    batch,
    config,
    deployments,
    drift,
    experiments,
    export,
    export_kube,
    housekeeping,
    jobs,
    keys,
    logs,
    models,
    predicting,
    quality,
    quickstart,
    references,
    release,
    schedules,
    serving,
    stream,
    worker,
)

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Registry, serving and operations for trained ML models.",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def main(
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the modelport version and exit.",
        ),
    ] = False,
) -> None:
    """Registry, serving and operations for trained ML models."""
    # Warnings the library logs (a database that went away) are for servers' logs; a command
    # says what went wrong in its own `error:` line, cause included. `serve` sets up logging.
    logging.getLogger("modelport").addHandler(logging.NullHandler())


app.command()(quickstart.quickstart)
app.command()(models.register)
app.command()(models.models)
app.command()(models.versions)
app.command()(models.stage)
app.add_typer(aliases.app, name="alias")
app.add_typer(keys.app, name="keys")
app.command()(serving.serve)
app.command()(deployments.apply)
app.add_typer(deployments.app, name="deployments")
app.command()(deployments.rollback)
app.command()(predicting.predict)
app.command()(batch.batch)
app.command()(worker.worker)
app.command()(stream.stream)
app.add_typer(jobs.app, name="jobs")
app.add_typer(schedules.app, name="schedules")
app.command("import-mlflow")(housekeeping.import_mlflow)
app.command()(housekeeping.optimize)
app.command()(housekeeping.gc)
app.command()(logs.logs)
app.command()(quality.quality)
app.add_typer(audit.app, name="audit")
app.add_typer(config.app, name="config")
for kube_export in (export_kube.k8s, export_kube.helm, export_kube.kserve):
    export.app.command()(kube_export)
export.app.command("github-actions")(release.github_actions)
app.add_typer(export.app, name="export")
app.add_typer(references.app, name="reference")
app.add_typer(drift.app, name="drift")
app.add_typer(experiments.app, name="experiments")
app.add_typer(release.card, name="card")
app.command()(release.check)


@app.command()
def version() -> None:
    """Print the modelport version."""
    typer.echo(__version__)
