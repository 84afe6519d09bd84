"""`modelport export …`: files other systems read, generated from what modelport exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml

from modelport.cli import output
from modelport.cli.sessions import opened_registry
from modelport.deploy.bake import bake
from modelport.deploy.compose import EXTRAS, StackOptions, stack_files
from modelport.deploy.dockerfile import BAKE_CONTEXT, DEFAULT_BASE, ImageOptions, context_files
from modelport.deploy.grafana import dashboard
from modelport.deploy.pins import modelport_version, pinned_requirements
from modelport.errors import InvalidInputError
from modelport.monitoring.alerts import AlertThresholds, rules

app = typer.Typer(
    no_args_is_help=True,
    help="Generate files for other systems: a container image (dockerfile), a compose stack "
    "with PostgreSQL, Redis, a worker, Prometheus and Grafana (compose), alert rules (alerts), "
    "a Grafana dashboard (grafana), Kubernetes, Helm and KServe manifests (k8s, helm, kserve).",
)

_MODELS = typer.Option(
    "--model", "-m", help="Model to serve: name@alias, name/3 or name (repeat for more)."
)
_FOLDER = typer.Option(
    "--output", "-o", help="Folder to write the files into (created); without it, stdout."
)
_BASE = typer.Option(help="Base image of both stages, pinned (a version tag or a digest).")
_EXTRAS = typer.Option(
    help="modelport extras the image installs, comma-separated (postgres,redis,celery,s3…); "
    "they must be installed here, as their versions are pinned from here."
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
    _emit(yaml.safe_dump(rules(thresholds), sort_keys=False, width=100), out)


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
    _emit(json.dumps(dashboard(title), indent=2) + "\n", out)


def _emit(text: str, out: Path | None) -> None:
    """One file's text to stdout, or into ``out``."""
    if out is None:
        typer.echo(text, nl=False)
        return
    with output.reporting_errors():
        out.write_text(text)
    output.console.print(f"wrote {out}", highlight=False)


@app.command()
def dockerfile(
    model: Annotated[list[str] | None, _MODELS] = None,
    bake_models: Annotated[
        bool,
        typer.Option(
            "--bake",
            help="Copy the models' artifacts from the registry into the build context (with "
            "a SHA-256 manifest the build verifies): the image serves them without any "
            "database or store. Needs -o.",
        ),
    ] = False,
    base: Annotated[str, _BASE] = DEFAULT_BASE,
    extras: Annotated[str, _EXTRAS] = "",
    out: Annotated[Path | None, _FOLDER] = None,
) -> None:
    """A two-stage Dockerfile serving the models, its .dockerignore and requirements.lock
    (dependencies pinned to the versions installed here); the build context also needs
    modelport's wheel (`pip wheel --no-deps --wheel-dir DIR .` in a checkout)."""
    with output.reporting_errors():
        options = ImageOptions(models=tuple(model or ()), bake=bake_models, base=base)
        if bake_models and out is None:
            raise InvalidInputError("--bake writes a folder: name it with -o", pointer="/output")
        chosen = {e.strip() for e in extras.split(",") if e.strip()}
        files = context_files(options, pinned_requirements(chosen))
    if out is None:
        typer.echo(files["Dockerfile"], nl=False)
        return
    if bake_models:  # first: a model that cannot be baked leaves no Dockerfile behind
        with opened_registry() as registry:
            baked = bake(registry, options.models, out / BAKE_CONTEXT)
        for item in baked:
            output.console.print(
                f"baked {item.address} (version {item.version}) into {out / BAKE_CONTEXT}",
                highlight=False,
            )
    output.write_files(out, files)
    _check_wheel(out, options.wheel)


@app.command()
def compose(
    model: Annotated[list[str] | None, _MODELS] = None,
    image: Annotated[
        str | None,
        typer.Option(
            help="Run this image (built with `export dockerfile --extras postgres,redis,celery`) "
            "instead of building the Dockerfile written beside compose.yaml."
        ),
    ] = None,
    base: Annotated[str, _BASE] = DEFAULT_BASE,
    extras: Annotated[str, _EXTRAS] = ",".join(EXTRAS),
    out: Annotated[Path | None, _FOLDER] = None,
) -> None:
    """A compose stack: modelport on PostgreSQL and Redis, a Celery worker for the models'
    jobs, Prometheus with the alert rules and Grafana; plus .env.example (placeholders) and,
    unless --image, the image's build context."""
    with output.reporting_errors():
        options = StackOptions(models=tuple(model or ()), image=image)
        files = stack_files(options)
        image_options = ImageOptions(models=options.models, base=base)
        if image is None:
            chosen = {e.strip() for e in extras.split(",") if e.strip()}
            files |= context_files(image_options, pinned_requirements(chosen | set(EXTRAS)))
    if out is None:
        typer.echo(files["compose.yaml"], nl=False)
        return
    output.write_files(out, files)
    output.console.print(
        f"next: cp {out / '.env.example'} {out / '.env'}, replace its placeholders, then "
        "see docs/shipping.md",
        highlight=False,
        soft_wrap=True,
    )
    if image is None:
        _check_wheel(out, image_options.wheel)


def _check_wheel(folder: Path, wheel: str) -> None:
    if not (folder / wheel).is_file():
        output.warn(
            f"{folder / wheel} is not there yet: build it into the context with "
            f"`pip wheel --no-deps --wheel-dir {folder} .` in a modelport checkout, or fetch "
            f"the published one with `pip download --no-deps --only-binary=:all: "
            f"modelport=={modelport_version()} -d {folder}`"
        )
