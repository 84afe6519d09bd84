"""Work on versions already registered: `gc`, `optimize`, `import-mlflow`."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from modelport.cli import output
from modelport.cli.inputs import read_input
from modelport.cli.output import JsonFlag
from modelport.cli.sessions import opened_registry


def gc(
    older_than_minutes: Annotated[
        int,
        typer.Option(help="Leave younger files alone: a registration may still be uploading them."),
    ] = 60,
) -> None:
    """Delete what killed registrations left: unreferenced artifacts and scratch folders."""
    with opened_registry() as registry:
        removed = registry.collect_garbage(timedelta(minutes=older_than_minutes))
    output.console.print(f"removed {len(removed)} leftover folder(s)")
    for key in removed:
        output.console.print(f"  {key}", highlight=False)


def import_mlflow(
    source: Annotated[str, typer.Argument(help="MLflow model folder, file://, runs:/ or models:/")],
    name: Annotated[str, typer.Argument(help="Model name in modelport.")],
    trusted: Annotated[bool, typer.Option(help="Allow pickled (cloudpickle) models.")] = False,
    sample: Annotated[
        str | None,
        typer.Option(help="Sample input (default: the MLflow input example, else its signature)."),
    ] = None,
    alias: Annotated[str | None, typer.Option(help="Point this alias at the new version.")] = None,
) -> None:
    """Turn an MLflow model (sklearn, onnx, lightgbm, xgboost or pyfunc) into a version."""
    from modelport.registry.mlflow_import import import_mlflow as run_import

    with opened_registry() as registry:
        record = run_import(
            registry, source, name, trusted=trusted, sample=read_input(sample) if sample else None
        )
        if alias:
            registry.set_alias(name, alias, record.version)
    output.console.print(f"imported {source} as {record.address} ({record.framework})")


def optimize(
    model: Annotated[str, typer.Argument(help="name, name/3 or name@alias")],
    rows: Annotated[int, typer.Option(min=1, help="Rows in the parity sample.")] = 512,
    atol: Annotated[
        float,
        typer.Option(min=0.0, help="Largest allowed difference of probabilities / predictions."),
    ] = 1e-5,
    alias: Annotated[str | None, typer.Option(help="Point this alias at the new version.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Compile a scikit-learn, LightGBM or XGBoost version to ONNX, checked for parity."""
    from modelport.registry.optimize import optimize_version

    with opened_registry() as registry:
        result = optimize_version(registry, model, rows=rows, atol=atol)
        record = result.record
        if alias:
            record = registry.set_alias(record.name, alias, record.version)
    if as_json:
        output.emit_json({"version": record.to_dict(), **result.report()})
    else:
        output.console.print(
            result.summary() + (f", {alias} -> v{record.version}" if alias else "")
        )
