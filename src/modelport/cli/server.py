"""Running the server from the CLI: uvicorn (uvloop + httptools), graceful drain on SIGTERM."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
from typing import Any

import uvicorn

from modelport.config import Settings, as_environment
from modelport.errors import ConfigurationError, ConflictError, NotFoundError
from modelport.logs import configure_logging
from modelport.registry import ModelAddress, Registry
from modelport.rollout.store import DeploymentStore
from modelport.serving import create_app
from modelport.serving.http.protocol import HttpProtocol

FACTORY = "modelport.serving.http.app:app_from_environment"


def run_server(settings: Settings, models: list[str]) -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests get ``drain_timeout_s`` to finish.

    With several workers, each process builds its own app from the environment, and
    Prometheus metrics go through a shared folder so ``/metrics`` sums every process.
    Callers check the port first (:func:`check_port`), before anything slow; start-up fails
    fast, with the reason, when a version cannot load (unless ``wait_for_models``).
    """
    configure_logging(settings)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "log_config": None,
        "access_log": settings.access_log,
        "loop": "uvloop",
        "http": HttpProtocol,  # httptools, one write per response (protocol.py)
        "timeout_graceful_shutdown": int(settings.drain_timeout_s),
        # X-Forwarded-* rewriting is a middleware layer on every request that nothing here reads
        "proxy_headers": False,
        "ssl_certfile": settings.ssl_certfile,
        "ssl_keyfile": settings.ssl_keyfile,
    }
    workers = settings.resolved_workers
    if workers == 1:
        app = create_app(settings, models)
        server = uvicorn.Server(uvicorn.Config(app, **options))
        with contextlib.suppress(SystemExit):  # uvicorn exits on a failed start; we explain it
            server.run()
        if not server.started:
            raise getattr(app.app.state, "startup_error", None) or ConfigurationError(
                "the server did not start; the log above says why"
            )
        return
    metrics_dir = (settings.home / "metrics" / str(settings.port)).resolve()
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    shared = settings.model_copy(update={"models": models, "metrics_dir": metrics_dir})
    os.environ.update(as_environment(shared))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)  # read by each worker at import
    uvicorn.run(FACTORY, factory=True, workers=workers, **options)


def check_port(host: str, port: int) -> None:
    """Fail before loading anything when the address cannot be bound.

    uvicorn would only log the failure after every model has loaded; binding once here (with
    SO_REUSEADDR, as uvicorn does) turns it into a clear error. The port is released at once:
    another process could still take it in between, and uvicorn then reports it itself.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConflictError(f"{host}:{port} is already in use by another process") from exc
            raise ConfigurationError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from exc


def check_deployments(registry: Registry, names: list[str]) -> None:
    """Every deployment asked for exists (a worker would only log that it does not)."""
    known = DeploymentStore(registry).revisions()
    for name in names:
        if name not in known:
            raise NotFoundError(
                f"cannot serve deployment {name!r}: it is not in the registry (create it with "
                "`modelport apply -f FILE`, or start with --wait-for-models to wait for it)"
            )


def check_models(registry: Registry, models: list[str]) -> None:
    """Every address resolves in the registry (a worker would only log that it cannot)."""
    for model in models:
        try:
            registry.resolve(ModelAddress.parse(model))
        except NotFoundError as exc:
            raise type(exc)(
                f"cannot serve {model}: {exc.detail} (start with --wait-for-models to wait for it)"
            ) from exc
