"""`modelport drift report`: how a model's (or a deployment's) recent traffic compares with
its reference, as an HTML page with a plot per feature and a JSON summary."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelport.cli import output
from modelport.cli.output import JsonFlag
from modelport.cli.sessions import current_settings, opened_registry
from modelport.durations import parse_duration
from modelport.errors import InvalidInputError
from modelport.monitoring.drift import DriftResult, drift_reports_of
from modelport.registry import Registry
from modelport.rollout.store import DeploymentStore

if TYPE_CHECKING:
    from modelport.monitoring.drift_html import Section

app = typer.Typer(no_args_is_help=True, help="Drift of live traffic from the reference data.")


@app.command()
def report(
    model: Annotated[str | None, typer.Option(help="NAME, NAME/VERSION or NAME@ALIAS.")] = None,
    deployment: Annotated[str | None, typer.Option(help="Every slot of this deployment.")] = None,
    window: Annotated[str, typer.Option(help="How far back: 30m, 1h, 7d.")] = "1h",
    out: Annotated[Path, typer.Option("--output", "-o", help="Where the HTML report goes.")] = Path(
        "drift-report.html"
    ),
    as_json: JsonFlag = False,
) -> None:
    """Compare the newest WINDOW of logged traffic with the reference profile; write the HTML
    report and print the summary (JSON with --json)."""
    with output.reporting_errors():
        if (model is None) == (deployment is None):
            raise InvalidInputError("name exactly one of --model and --deployment")
        span = parse_duration(window, field="window")
    settings = current_settings()
    with opened_registry(settings) as registry:
        reports = drift_reports_of(settings, registry)
        results = [
            reports.report(name, version, span)
            for name, version in _versions(registry, model, deployment)
        ]
    from modelport.monitoring.drift_html import render  # scipy behind it: only this command

    title = f"Drift of {model or deployment} over the last {window}"
    with output.reporting_errors():
        out.write_text(render(title, _sections(results), _notes(results)))
    if as_json:
        output.emit_json({"report": str(out), "versions": [r.to_dict() for r in results]})
        return
    for result in results:
        output.console.print(_line(result), highlight=False)
    output.console.print(f"wrote {out}", highlight=False)


def _versions(
    registry: Registry, model: str | None, deployment: str | None
) -> list[tuple[str, int]]:
    if model is not None:
        record = registry.resolve(model)
        return [(record.name, record.version)]
    assert deployment is not None
    slots = DeploymentStore(registry).get(deployment).spec.slots
    found = [registry.resolve(slot.model) for slot in slots]
    return list(dict.fromkeys((r.name, r.version) for r in found))


def _sections(results: list[DriftResult]) -> list[Section]:
    from modelport.monitoring.drift_html import Section

    return [
        Section(f"{r.model}/{r.version}", r.report, r.reference, r.current.columns)
        for r in results
        if r.report is not None and r.reference is not None and r.current is not None
    ]


def _notes(results: list[DriftResult]) -> str:
    return " ".join(r.reason for r in results if r.report is None)


def _line(result: DriftResult) -> str:
    address = f"{result.model}/{result.version}"
    if result.report is None:
        return f"{address}: no verdict: {result.reason}"
    dataset = result.report.dataset
    drifted = ", ".join(result.report.drifted_features) or "none"
    verdict = "DRIFT" if dataset.drifted else "stable"
    return (
        f"{address}: {verdict}: {dataset.drifted_features}/{dataset.features} features drifted "
        f"({drifted}); {result.report.rows:,} rows"
    )
