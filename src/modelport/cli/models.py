"""Models and their versions: `register`, `models`, `versions`, `stage`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from modelport.cli import output
from modelport.cli.inputs import InputLayout, read_input
from modelport.cli.output import JsonFlag
from modelport.cli.sessions import current_settings, opened_registry
from modelport.registry import PreparedModel, Stage, prepare_file
from modelport.runtimes.base import load_runtime

if TYPE_CHECKING:
    from modelport.monitoring.profile import ReferenceProfile

MODEL_FILES = (
    ".skops, .onnx, LightGBM .txt/.lgb, XGBoost .ubj/.json, or with --trusted .joblib/.pkl/.pickle"
)


def register(
    name: Annotated[str, typer.Argument(help="Model name; the version number is assigned.")],
    path: Annotated[Path, typer.Argument(help=f"Model file: {MODEL_FILES}.")],
    sample: Annotated[
        str, typer.Option(help="Sample input (.csv, .json or .npy); it defines the signature.")
    ],
    trusted: Annotated[bool, typer.Option(help="Allow pickle / unreviewed types.")] = False,
    description: Annotated[str, typer.Option(help="What this version is.")] = "",
    tag: Annotated[list[str], typer.Option(help="key=value, repeatable.")] = [],  # noqa: B006
    metric: Annotated[list[str], typer.Option(help="key=value, repeatable.")] = [],  # noqa: B006
    param: Annotated[list[str], typer.Option(help="key=value, repeatable.")] = [],  # noqa: B006
    alias: Annotated[str | None, typer.Option(help="Point this alias at the new version.")] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            help="Reference data for drift (.csv, .json, .npy, .parquet).", metavar="FILE"
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a model file as the next version of NAME."""
    with opened_registry() as registry:
        with prepare_file(
            path, read_input(sample), name=name, trusted=trusted, scratch=registry.scratch_dir
        ) as prepared:
            # before anything is stored: data the model cannot take fails the registration
            profile = None if reference is None else captured(prepared, reference)
            record = registry.register(
                name,
                prepared,
                description=description,
                tags=parse_pairs(tag, "--tag"),
                params=parse_pairs(param, "--param"),
                metrics=parse_pairs(metric, "--metric"),
            )
            if profile is not None:
                from modelport.monitoring import references

                references.store(registry, record, profile)
        if alias:
            record = registry.set_alias(name, alias, record.version)
    if as_json:
        output.emit_json(record.to_dict())
    else:
        output.console.print(
            f"registered {record.address} ({record.framework})"
            + (f", {alias} -> v{record.version}" if alias else "")
        )


def models(as_json: JsonFlag = False) -> None:
    """List registered models."""
    with opened_registry() as registry:
        found = registry.list_models()
    if as_json:
        output.emit_json([m.to_dict() for m in found])
        return
    output.table(
        "models",
        ["name", "latest", "aliases", "description"],
        [
            (
                m.name,
                m.latest_version,
                ", ".join(f"{a}->v{v}" for a, v in sorted(m.aliases.items())),
                m.description,
            )
            for m in found
        ],
    )


def versions(
    name: Annotated[str, typer.Argument(help="Model name.")],
    as_json: JsonFlag = False,
) -> None:
    """List the versions of a model."""
    with opened_registry() as registry:
        found = registry.list_versions(name)
    if as_json:
        output.emit_json([v.to_dict() for v in found])
        return
    output.table(
        f"{name} versions",
        ["version", "framework", "stage", "aliases", "metrics", "created"],
        [
            (
                v.version,
                v.framework,
                v.stage.value,
                ", ".join(v.aliases),
                ", ".join(
                    f"{k}={val:.4g}" if isinstance(val, float) else f"{k}={val}"
                    for k, val in v.metrics.items()
                ),
                v.created_at.strftime("%Y-%m-%d %H:%M"),
            )
            for v in found
        ],
    )


def stage(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version number.")],
    to: Annotated[Stage, typer.Argument(help="None, Staging, Production, Archived")],
) -> None:
    """Record a lifecycle state change of a version."""
    with opened_registry() as registry:
        record = registry.transition_stage(name, version, to)
    output.console.print(f"{record.address} is now {record.stage.value}")


def parse_pairs(values: list[str], option: str) -> dict[str, Any]:
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


def captured(prepared: PreparedModel, source: str) -> ReferenceProfile:
    """The reference profile of the data in ``source``, through the prepared model."""
    from modelport.monitoring import references  # scipy behind it: only when asked for

    data = read_input(source, InputLayout.of(prepared.signature))
    runtime = load_runtime(prepared.flavor, prepared.load_request())
    rows = current_settings().reference_sample_rows
    return references.capture(prepared.signature, runtime, data, max_sample_rows=rows)
