"""`modelport quality`: how a version's answers compare with the ground truth sent back for
them (`POST /v1/feedback`)."""

from __future__ import annotations

from typing import Annotated

import typer

from modelport.cli import output
from modelport.cli.output import JsonFlag
from modelport.cli.sessions import current_settings, opened_registry
from modelport.durations import parse_duration
from modelport.monitoring.quality import quality_reports_of


def quality(
    model: Annotated[str, typer.Argument(help="NAME, NAME/VERSION or NAME@ALIAS.")],
    window: Annotated[str, typer.Option(help="How far back: 1h, 1d, 7d.")] = "1d",
    as_json: JsonFlag = False,
) -> None:
    """Quality of a version over the labelled answers of the window (accuracy, F1, ROC AUC,
    log loss for classifiers; MAE, RMSE, R² for regressors)."""
    with output.reporting_errors():
        span = parse_duration(window, field="window")
    settings = current_settings()
    with opened_registry(settings) as registry:
        record = registry.resolve(model)
        result = quality_reports_of(settings, registry).report(record.name, record.version, span)
    if as_json:
        output.emit_json(result.to_dict())
        return
    if result.quality is None:
        output.console.print(
            f"{record.address}: no labelled answers in the last {window}", highlight=False
        )
        return
    output.table(
        f"{record.address}: {result.quality.kind}, {result.quality.rows:,} labelled rows, "
        f"last {window}",
        ["metric", "value"],
        [
            (name, "-" if value is None else f"{value:.4f}")
            for name, value in result.quality.metrics.items()
        ],
    )
