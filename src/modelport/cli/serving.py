"""`modelport serve`: host models over KServe V1, Open Inference Protocol V2 and MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelport.cli import output
from modelport.cli.sessions import current_settings, opened_registry
from modelport.errors import ConfigurationError
from modelport.registry import ModelAddress
from modelport.rollout.store import DeploymentStore
from modelport.security.policy import exposure_warning

_HINTS = {
    "conflict": "stop the other server, or pick another port with --port",
    "configuration_error": "check --host / --port (or MODELPORT_HOST / MODELPORT_PORT); "
    "`modelport config show` prints the values in use",
}


def serve(
    model: Annotated[
        list[str] | None,
        typer.Argument(
            help="Models to serve: name@alias (follows the alias), name/3 (fixed), or name "
            "(follows the latest version)."
        ),
    ] = None,
    deployment: Annotated[
        list[str] | None,
        typer.Option(
            "--deployment",
            help="Serve this deployment (repeat for more). Given neither a model nor "
            "--deployment, serve every deployment in the registry, and those applied later.",
        ),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    default_model: Annotated[str | None, typer.Option(help="Model for /invocations.")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Server processes (default: one per CPU).")
    ] = None,
    grpc_port: Annotated[
        int | None,
        typer.Option(
            help="Also serve Open Inference Protocol V2 over gRPC on this port (needs the grpc "
            "extra)."
        ),
    ] = None,
    wait_for_models: Annotated[
        bool | None,
        typer.Option(
            "--wait-for-models",
            help="Start even when a model cannot be loaded yet, and keep "
            "trying (default: exit with the reason).",
        ),
    ] = None,
    ssl_certfile: Annotated[
        Path | None, typer.Option(help="TLS certificate (PEM): serve HTTPS (and gRPC over TLS).")
    ] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    insecure: Annotated[
        bool | None,
        typer.Option(
            "--insecure",
            help="Allow listening beyond loopback with MODELPORT_AUTH=off (the server warns).",
        ),
    ] = None,
) -> None:
    """Serve models and deployments over KServe V1, Open Inference Protocol V2 and MLflow
    /invocations."""
    from modelport.cli.server import check_deployments, check_models, check_port, run_server

    model, deployment = model or [], deployment or []

    overrides = {
        k: v
        for k, v in {
            "host": host,
            "port": port,
            "grpc_port": grpc_port,
            "default_model": default_model,
            "workers": workers,
            "wait_for_models": wait_for_models,
            "insecure": insecure,
            "ssl_certfile": ssl_certfile,
            "ssl_keyfile": ssl_keyfile,
            "deployments": deployment,
            "all_deployments": not model and not deployment,
        }.items()
        if v is not None
    }
    settings = current_settings(**overrides)
    with output.reporting_errors():
        addresses = [ModelAddress.parse(item) for item in model]
    for address in addresses:
        if address.version is None and address.alias is None:
            output.warn(follows_latest(address.name))
    if (settings.ssl_certfile is None) != (settings.ssl_keyfile is None):
        output.fail(
            ConfigurationError("TLS needs both a certificate and its key"),
            "pass --ssl-certfile and --ssl-keyfile together",
        )
    exposure = exposure_warning(settings)
    if exposure is not None and not settings.insecure:
        output.fail(
            ConfigurationError(exposure),
            "require API keys (MODELPORT_AUTH=auto or required; create one with `modelport "
            "keys create --scope admin`), or accept the risk with --insecure",
        )
    with output.reporting_errors(_HINTS):
        check_port(settings.host, settings.port)  # before anything slow
    if not settings.wait_for_models:
        with opened_registry(settings) as registry:  # before any worker starts loading
            check_models(registry, model)
            check_deployments(registry, deployment)
            if settings.all_deployments and not DeploymentStore(registry).revisions():
                output.warn(
                    "no model named and no deployment in the registry yet: serving "
                    "deployments as they are applied (`modelport serve NAME` serves a model)"
                )
    with output.reporting_errors(_HINTS):
        run_server(settings, model)


def follows_latest(name: str) -> str:
    return (
        f"{name} follows the latest version: registering a new version switches this "
        f"server to it within seconds. Serve {name}@production (moved on purpose with "
        f"`modelport alias set`) or {name}/N (fixed) to decide when it changes."
    )
