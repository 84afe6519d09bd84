"""`modelport card`, `modelport check` and `export github-actions`: what a release needs
besides the model itself — a filled-in model card, a gate that compares the candidate with
production, and a CI workflow that runs the gate before moving the alias.

The logic lives below (:mod:`modelport.registry.cards`, :mod:`modelport.deploy.gate`,
:mod:`modelport.deploy.github_actions`); this module reads options and prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from modelport.cli import output
from modelport.cli.output import JsonFlag
from modelport.cli.sessions import opened_registry
from modelport.errors import AliasNotFoundError, InvalidInputError
from modelport.registry.cards import CardFields, card_of, edit_card, html, markdown

if TYPE_CHECKING:
    from modelport.deploy.gate import HoldOut


class _ShowByDefault(TyperGroup):
    """`modelport card iris/3` (or `card --html iris/3`) means `modelport card show …`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # click's Context, vendored
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


card = typer.Typer(
    cls=_ShowByDefault,
    no_args_is_help=True,
    help="The model card of a version: show it (the default: `card NAME/VERSION`) or edit it.",
)

VersionArgument = Annotated[str, typer.Argument(help="NAME/VERSION or NAME@ALIAS.")]


@card.command()
def show(
    version: VersionArgument,
    as_html: Annotated[bool, typer.Option("--html", help="HTML instead of Markdown.")] = False,
    out: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
    ] = None,
) -> None:
    """Render the model card (Markdown, or HTML with --html).

    Description, intended use, signature, metrics, params, library versions, lineage,
    artifact hashes, aliases and their history, limitations, ethical considerations.
    """
    with opened_registry() as registry:
        record = registry.resolve(version)
        document = card_of(registry, record)
    text = html(document) if as_html else markdown(document)
    if out is None:
        typer.echo(text, nl=False)
        return
    with output.reporting_errors():
        out.write_text(text)
    output.console.print(f"wrote the card of {record.address} to {out}", highlight=False)


@card.command()
def edit(
    version: VersionArgument,
    description: Annotated[str | None, typer.Option(help="The version's description.")] = None,
    intended_use: Annotated[str | None, typer.Option(help="What it is for, and for whom.")] = None,
    limitations: Annotated[str | None, typer.Option(help="Where it is known to do badly.")] = None,
    training_data: Annotated[str | None, typer.Option(help="Which data it learnt from.")] = None,
    ethical_considerations: Annotated[
        str | None, typer.Option(help="Risks, fairness, privacy.")
    ] = None,
    owners: Annotated[
        list[str] | None,
        typer.Option("--owner", help="Who answers for it (repeat; replaces the list)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change the card's fields; those not given keep their text, '' clears one (audited as
    version.card)."""
    changes: dict[str, Any] = {
        "intended_use": intended_use,
        "limitations": limitations,
        "training_data": training_data,
        "ethical_considerations": ethical_considerations,
        "owners": owners,
    }
    with opened_registry() as registry:
        record = registry.resolve(version)
        record = edit_card(registry, record.name, record.version, changes, description=description)
    fields = CardFields.of(record)
    if as_json:
        output.emit_json({"description": record.description, **fields.to_dict()})
        return
    missing = fields.missing() + ([] if record.description.strip() else ["description"])
    output.console.print(
        f"{record.address}: card updated"
        + (f"; still missing: {', '.join(missing)}" if missing else "; complete"),
        highlight=False,
    )


def check(
    candidate: Annotated[
        str, typer.Argument(help="The version to release: NAME/VERSION or NAME@ALIAS.")
    ],
    against: Annotated[str, typer.Option(help="What it would replace, e.g. NAME@production.")],
    data: Annotated[
        Path | None, typer.Option(help="Labelled hold-out rows: .csv or .parquet.")
    ] = None,
    label: Annotated[
        str | None, typer.Option(help="The column of --data holding the true values.")
    ] = None,
    max_quality_drop: Annotated[
        float,
        typer.Option(
            min=0, help="How much worse than production accuracy/F1/R² may be (RMSE: relative)."
        ),
    ] = 0.01,
    latency_budget_ms: Annotated[
        float, typer.Option(min=0, help="Most a single-row prediction may take, at p99.")
    ] = 50.0,
    latency_runs: Annotated[
        int, typer.Option(min=10, help="Single-row predictions timed for the latency check.")
    ] = 200,
    as_json: JsonFlag = False,
) -> None:
    """Release gate: artifact hashes, signature compatibility, hold-out quality, latency and
    the model card of CANDIDATE against production. Exit code 1 when a check fails."""
    from modelport.deploy.gate import GateOptions, run_gate  # sklearn behind it

    options = GateOptions(max_quality_drop, latency_budget_ms, latency_runs)
    with opened_registry() as registry:
        record = registry.resolve(candidate)
        try:
            production = registry.resolve(against)
        except AliasNotFoundError:
            production = None  # a first release: nothing to compare with
        holdout = None if data is None else _holdout(data, label)
        report = run_gate(registry, record, production, holdout, options)
    if as_json:
        output.emit_json(report.to_dict())
    else:
        against_text = production.address if production else f"{against} (not set)"
        output.table(
            f"release gate: {record.address} against {against_text}",
            ["check", "status", "detail"],
            [(c.name, c.status.value, c.detail) for c in report.checks],
        )
    if not report.passed:
        raise typer.Exit(1)


def _holdout(path: Path, label: str | None) -> HoldOut:
    import numpy as np
    import pandas as pd

    from modelport.deploy.gate import HoldOut
    from modelport.runtimes.signature import sample_arrays

    if label is None:
        output.fail(InvalidInputError("--data needs --label: the column of true values"))
    with output.reporting_errors():
        if not path.is_file():
            raise InvalidInputError(f"hold-out file {path} does not exist", pointer="/data")
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif path.suffix == ".csv":
            frame = pd.read_csv(path)
        else:
            raise InvalidInputError(f"{path}: hold-out data must be .csv or .parquet")
        if label not in frame.columns:
            raise InvalidInputError(
                f"{path} has no column {label!r} (it has {', '.join(map(str, frame.columns))})",
                pointer="/label",
            )
        _, columns = sample_arrays(frame.drop(columns=[label]))
        return HoldOut(columns, np.asarray(frame[label].to_numpy()))


def github_actions(
    model: Annotated[str, typer.Option("--model", "-m", help="Model name.")],
    data: Annotated[str, typer.Option(help="Hold-out file in the repository (.csv, .parquet).")],
    label: Annotated[str, typer.Option(help="Its column of true values.")],
    candidate: Annotated[
        str | None, typer.Option(help="Version to check and promote (default: MODEL@staging).")
    ] = None,
    branch: Annotated[str, typer.Option(help="Branch whose pushes release.")] = "main",
    python: Annotated[str, typer.Option(help="Python version of the runner.")] = "3.11",
    package: Annotated[
        str, typer.Option(help="What pip installs.")
    ] = "modelport[postgres,s3,parquet]",
    test_command: Annotated[str, typer.Option(help="Runs the project's tests.")] = (
        "python -m pytest -q"
    ),
    image: Annotated[str | None, typer.Option(help="Image repository (default: MODEL).")] = None,
    max_quality_drop: Annotated[float, typer.Option(min=0, help="As for `check`.")] = 0.01,
    latency_budget_ms: Annotated[float, typer.Option(min=0, help="As for `check`.")] = 50.0,
    out: Annotated[
        Path,
        typer.Option("--output", "-o", help="Repository root the workflow file goes under."),
    ] = Path("."),
) -> None:
    """A GitHub Actions workflow: on push, test, run `modelport check` against production,
    build the image and move the production alias to the checked version."""
    from modelport.deploy.github_actions import WORKFLOW_PATH, WorkflowOptions, release_workflow

    with output.reporting_errors():
        text = release_workflow(
            WorkflowOptions(
                model=model,
                candidate=candidate or f"{model}@staging",
                data=data,
                label=label,
                branch=branch,
                python=python,
                package=package,
                test_command=test_command,
                image=image or "",
                max_quality_drop=max_quality_drop,
                latency_budget_ms=latency_budget_ms,
            )
        )
        path = out / WORKFLOW_PATH
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    output.console.print(f"wrote {path}", highlight=False)
