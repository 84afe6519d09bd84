"""`modelport export …`: files other systems read, generated from what modelport exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml

from modelport.cli import output
from modelport.deploy.grafana import dashboard
from modelport.monitoring.alerts import AlertThresholds, rules

app = typer.Typer(
    no_args_is_help=True,
    help="Generate files for other systems: alert rules, a Grafana dashboard, Kubernetes.",
)


@app.command()
def alerts(
    out: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    p95_ms: Annotated[float, typer.Option(min=0, help="p95 latency limit, ms.")] = 250.0,
    p99_ms: Annotated[float, typer.Option(min=0, help="p99 latency limit, ms.")] = 1000.0,
    error_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Share of requests answered 5xx.")
    ] = 0.01,
    drift_share: Annotated[
        float, typer.Option(min=0, max=1, help="Share of a version's features drifted.")
    ] = 0.5,
    quality_drop: Annotated[
        float, typer.Option(min=0, help="Fall of accuracy, F1, ROC AUC or R² within a day.")
    ] = 0.05,
) -> None:
    """Prometheus alert rules (a rule file for `rule_files:`) for latency, errors, drift,
    quality, prediction-log drops and failed model loads."""
    thresholds = AlertThresholds(p95_ms, p99_ms, error_rate, drift_share, quality_drop)
    _write(yaml.safe_dump(rules(thresholds), sort_keys=False, width=100), out)


@app.command()
def grafana(
    out: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    title: Annotated[str, typer.Option(help="The dashboard's title.")] = "modelport",
) -> None:
    """A Grafana dashboard (JSON, to import or provision): traffic, errors by version,
    p50/p95/p99, batching, queue wait, load failures, deployments, experiments, drift and
    quality, filtered by model."""
    _write(json.dumps(dashboard(title), indent=2) + "\n", out)


def _write(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=False)
        return
    with output.reporting_errors():
        out.write_text(text)
    output.console.print(f"wrote {out}", highlight=False)
