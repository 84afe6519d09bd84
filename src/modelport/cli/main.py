"""The `modelport` command line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from modelport import __version__
from modelport.cli import output
from modelport.cli.inputs import read_input
from modelport.config import Settings, describe_fields, dump_yaml
from modelport.registry import ModelAddress, Registry, Stage, stage_file

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Registry, serving and operations for trained ML models.")
alias_app = typer.Typer(no_args_is_help=True, help="Move, delete and list model aliases.")
config_app = typer.Typer(no_args_is_help=True, help="Inspect the effective configuration.")
app.add_typer(alias_app, name="alias")
app.add_typer(config_app, name="config")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@contextmanager
def opened_registry() -> Iterator[Registry]:
    """The registry of the current settings; errors become a message and exit code 1."""
    with output.reporting_errors():
        registry = Registry.from_settings(Settings())
        try:
            yield registry
        finally:
            registry.close()


def _pairs(values: list[str], option: str) -> dict[str, Any]:
    """``key=value`` options as a dict; numbers stay numbers."""
    result: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected key=value, got {item!r}", param_hint=option)
        try:
            result[key] = float(value) if "." in value or "e" in value.lower() else int(value)
        except ValueError:
            result[key] = value
    return result


@app.command()
def version() -> None:
    """Print the modelport version."""
    typer.echo(__version__)


@app.command()
def register(
    name: Annotated[str, typer.Argument(help="Model name; the version number is assigned.")],
    path: Annotated[Path, typer.Argument(help="Model file: .skops .onnx .txt .ubj .joblib")],
    sample: Annotated[str, typer.Option(help="Sample input (.csv, .json or .npy).")],
    trusted: Annotated[bool, typer.Option(help="Allow pickle / unreviewed types.")] = False,
    description: Annotated[str, typer.Option(help="What this version is.")] = "",
    tag: Annotated[list[str], typer.Option(help="key=value, repeatable.")] = [],  # noqa: B006
    metric: Annotated[list[str], typer.Option(help="key=value, repeatable.")] = [],  # noqa: B006
    param: Annotated[list[str], typer.Option(help="key=value, repeatable.")] = [],  # noqa: B006
    alias: Annotated[str | None, typer.Option(help="Point this alias at the new version.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a model file as the next version of NAME."""
    with opened_registry() as registry:
        with stage_file(path, read_input(sample), trusted=trusted) as staged:
            record = registry.register(name, staged, description=description,
                                       tags=_pairs(tag, "--tag"), params=_pairs(param, "--param"),
                                       metrics=_pairs(metric, "--metric"))
        if alias:
            record = registry.set_alias(name, alias, record.version)
    if as_json:
        output.emit_json(record.to_dict())
    else:
        output.console.print(f"registered {record.address} ({record.framework})"
                             + (f", {alias} -> v{record.version}" if alias else ""))


@app.command()
def models(as_json: JsonFlag = False) -> None:
    """List registered models."""
    with opened_registry() as registry:
        found = registry.list_models()
    if as_json:
        output.emit_json([m.to_dict() for m in found])
        return
    output.table("models", ["name", "latest", "aliases", "description"],
                 [(m.name, m.latest_version,
                   ", ".join(f"{a}->v{v}" for a, v in sorted(m.aliases.items())), m.description)
                  for m in found])


@app.command()
def versions(name: str, as_json: JsonFlag = False) -> None:
    """List the versions of a model."""
    with opened_registry() as registry:
        found = registry.list_versions(name)
    if as_json:
        output.emit_json([v.to_dict() for v in found])
        return
    output.table(f"{name} versions", ["version", "framework", "stage", "aliases", "metrics",
                                      "created"],
                 [(v.version, v.framework, v.stage.value, ", ".join(v.aliases),
                   ", ".join(f"{k}={val:.4g}" if isinstance(val, float) else f"{k}={val}"
                             for k, val in v.metrics.items()),
                   v.created_at.strftime("%Y-%m-%d %H:%M")) for v in found])


@app.command()
def stage(name: str, version: int,
          to: Annotated[Stage, typer.Argument(help="None, Staging, Production, Archived")]) -> None:
    """Record a lifecycle state change of a version."""
    with opened_registry() as registry:
        record = registry.transition_stage(name, version, to)
    output.console.print(f"{record.address} is now {record.stage.value}")


@alias_app.command("set")
def alias_set(name: str, alias: str, version: int) -> None:
    """Point ALIAS at VERSION; servers following it switch after loading it."""
    with opened_registry() as registry:
        registry.set_alias(name, alias, version)
    output.console.print(f"{name}@{alias} -> v{version}")


@alias_app.command("delete")
def alias_delete(name: str, alias: str) -> None:
    """Remove an alias."""
    with opened_registry() as registry:
        registry.delete_alias(name, alias)
    output.console.print(f"deleted {name}@{alias}")


@alias_app.command("list")
def alias_list(name: str, as_json: JsonFlag = False) -> None:
    """Current aliases of a model and every move they made."""
    with opened_registry() as registry:
        model = registry.get_model(name)
        history = registry.alias_history(name)
    if as_json:
        output.emit_json({"aliases": dict(model.aliases),
                          "history": [e.to_dict() for e in history]})
        return
    output.table(f"{name} aliases", ["alias", "version"], sorted(model.aliases.items()))
    output.table("history", ["at", "alias", "from", "to"],
                 [(e.at.strftime("%Y-%m-%d %H:%M:%S"), e.alias, e.from_version, e.to_version)
                  for e in history])


@app.command()
def gc(
    older_than_minutes: Annotated[int, typer.Option(
        help="Leave younger files alone: a registration may still be uploading them.")] = 60,
) -> None:
    """Delete artifact files that no version references (left by killed registrations)."""
    with opened_registry() as registry:
        removed = registry.collect_garbage(timedelta(minutes=older_than_minutes))
    output.console.print(f"removed {len(removed)} orphaned artifact folder(s)")
    for key in removed:
        output.console.print(f"  {key}", highlight=False)


@app.command()
def serve(
    model: Annotated[list[str], typer.Argument(help="Models to serve: name, name/3, name@alias")],
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    grpc_port: Annotated[int | None, typer.Option(
        min=0, max=65535, help="Also serve gRPC (Open Inference Protocol V2) on this port.")
    ] = None,
    default_model: Annotated[str | None, typer.Option(help="Model for /invocations.")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Server processes (default: one per CPU).")] = None,
    wait_for_models: Annotated[bool | None, typer.Option(
        "--wait-for-models", help="Start even when a model cannot be loaded yet, and keep "
        "trying (default: exit with the reason).")] = None,
) -> None:
    """Serve models over KServe V1, Open Inference Protocol V2 and MLflow /invocations."""
    from modelport.cli.server import run_server

    overrides = {k: v for k, v in {"host": host, "port": port, "grpc_port": grpc_port,
                                   "default_model": default_model, "workers": workers,
                                   "wait_for_models": wait_for_models}.items() if v is not None}
    with output.reporting_errors():
        for item in model:
            ModelAddress.parse(item)
        run_server(Settings().model_copy(update=overrides), model)


@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="name, name/3 or name@alias")],
    input: Annotated[str, typer.Option("--input", "-i", help=".csv, .json, .npy or - (stdin)")],
    url: Annotated[str | None, typer.Option(help="Ask a running server instead.")] = None,
    output_name: Annotated[str | None, typer.Option("--output", help="e.g. probabilities")] = None,
) -> None:
    """Predict with a registered model, locally or through a server; prints JSON."""
    from modelport.client import Client
    from modelport.sdk import load_model

    with output.reporting_errors():
        data = read_input(input)
        if url:
            with Client(url) as client:
                result = client.predict(model, data, output=output_name)
        else:
            loaded = load_model(model, settings=Settings())
            chosen = loaded.record.signature.output_name(output_name)
            result = loaded.predict_outputs(data)[chosen]
    output.emit_json({"predictions": result.tolist()})


@app.command("import-mlflow")
def import_mlflow_command(
    source: Annotated[str, typer.Argument(help="MLflow model folder, file://, runs:/ or models:/")],
    name: Annotated[str, typer.Argument(help="Model name in modelport.")],
    trusted: Annotated[bool, typer.Option(help="Allow pickled (cloudpickle) models.")] = False,
    sample: Annotated[str | None, typer.Option(
        help="Sample input (default: the MLflow input example, else its signature).")] = None,
    alias: Annotated[str | None, typer.Option(help="Point this alias at the new version.")] = None,
) -> None:
    """Turn an MLflow model (sklearn, onnx, lightgbm, xgboost or pyfunc) into a version."""
    from modelport.registry.mlflow_import import import_mlflow

    with opened_registry() as registry:
        record = import_mlflow(registry, source, name, trusted=trusted,
                               sample=read_input(sample) if sample else None)
        if alias:
            registry.set_alias(name, alias, record.version)
    output.console.print(f"imported {source} as {record.address} ({record.framework})")


@app.command()
def optimize(
    model: Annotated[str, typer.Argument(help="name, name/3 or name@alias")],
    rows: Annotated[int, typer.Option(min=1, help="Rows in the parity sample.")] = 512,
    atol: Annotated[float, typer.Option(
        min=0.0, help="Largest allowed difference of probabilities / predictions.")] = 1e-5,
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
        output.console.print(result.summary()
                             + (f", {alias} -> v{record.version}" if alias else ""))


@app.command()
def quickstart(
    serve_demo: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve it.")] = True,
) -> None:
    """Train and register a demo classifier (two versions), then serve iris@production."""
    from modelport.cli.quickstart import DEMO, prepare_demo, print_examples
    from modelport.cli.server import run_server

    settings = Settings()
    with output.reporting_errors():
        prepare_demo(settings, output.console)
        if serve_demo:
            print_examples(settings, output.console)
            run_server(settings, [f"{DEMO}@production"])


@config_app.command("show")
def config_show(
    describe: Annotated[bool, typer.Option(help="List every setting.")] = False,
) -> None:
    """Print the effective settings (secrets redacted)."""
    if describe:
        output.table("settings", ["variable", "default", "description"], describe_fields())
        return
    with output.reporting_errors():
        typer.echo(dump_yaml(Settings()))
