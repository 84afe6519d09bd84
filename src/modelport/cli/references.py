"""`modelport reference set|show`: the reference data a version's live traffic is compared
with for drift."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from modelport.cli import output
from modelport.cli.inputs import InputLayout, read_input
from modelport.cli.output import JsonFlag
from modelport.cli.sessions import current_settings, opened_registry
from modelport.errors import ReferenceNotFoundError

if TYPE_CHECKING:  # scipy behind them: loaded by these commands only
    from modelport.monitoring.binning import ColumnSummary
    from modelport.monitoring.profile import ReferenceProfile

app = typer.Typer(no_args_is_help=True, help="Reference data of a version, for drift (set, show).")

VersionArgument = Annotated[str, typer.Argument(help="NAME/VERSION or NAME@ALIAS.")]


@app.command("set")
def set_reference(
    version: VersionArgument,
    data: Annotated[str, typer.Argument(help="Reference rows: .csv, .json, .npy, .parquet.")],
    as_json: JsonFlag = False,
) -> None:
    """Capture the reference profile of a version from DATA (replacing any)."""
    from modelport.monitoring import references

    with opened_registry() as registry:
        record = registry.resolve(version)
        rows = read_input(data, InputLayout.of(record.signature))
        profile = references.attach(
            registry,
            record,
            rows,
            max_sample_rows=current_settings().reference_sample_rows,
        )
    _show(record.address, profile, as_json)


@app.command()
def show(version: VersionArgument, as_json: JsonFlag = False) -> None:
    """Summarise a version's reference profile: features, kinds, missing values, bins."""
    from modelport.monitoring import references

    with opened_registry() as registry:
        record = registry.resolve(version)
        profile = references.load(registry, record.name, record.version)
    if profile is None:
        output.fail(
            ReferenceNotFoundError(f"{record.address} has no reference profile"),
            f"attach one: modelport reference set {record.address} FILE",
        )
    _show(record.address, profile, as_json)


def _show(address: str, profile: ReferenceProfile, as_json: bool) -> None:
    if as_json:
        output.emit_json(profile.to_dict())
        return
    output.table(
        f"reference of {address}: {profile.rows:,} rows, sample {profile.sample.rows:,}",
        ["feature", "kind", "missing", "bins / categories"],
        [
            (
                name,
                str(summary.kind),
                f"{summary.missing_rate:.1%}",
                str(len(summary.counts)),
            )
            for name, summary in _summaries(profile)
        ],
    )


def _summaries(profile: ReferenceProfile) -> list[tuple[str, ColumnSummary]]:
    features = list(profile.features.items())
    if profile.predictions is not None:
        features.append(("(predictions)", profile.predictions))
    return features
