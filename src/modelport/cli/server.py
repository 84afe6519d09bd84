"""Running the server from the CLI: uvicorn (uvloop + httptools), graceful drain on SIGTERM."""

from __future__ import annotations

import os
import shutil
from typing import Any

import uvicorn

from modelport.config import Settings, as_environment
from modelport.logs import configure_logging
from modelport.serving import create_app

FACTORY = "modelport.serving.http.app:app_from_environment"


def run_server(settings: Settings, models: list[str]) -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests get ``drain_timeout_s`` to finish.

    With several workers, each process builds its own app from the environment, and
    Prometheus metrics go through a shared folder so ``/metrics`` sums every process.
    """
    configure_logging(settings)
    options: dict[str, Any] = {
        "host": settings.host, "port": settings.port, "log_level": settings.log_level,
        "log_config": None, "access_log": settings.access_log, "loop": "uvloop",
        "http": "httptools",
        "timeout_graceful_shutdown": int(settings.drain_timeout_s)}
    workers = settings.resolved_workers
    if workers == 1:
        uvicorn.Server(uvicorn.Config(create_app(settings, models), **options)).run()
        return
    metrics_dir = (settings.home / "metrics" / str(settings.port)).resolve()
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    shared = settings.model_copy(update={"models": models, "metrics_dir": metrics_dir})
    os.environ.update(as_environment(shared))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)  # read by each worker at import
    uvicorn.run(FACTORY, factory=True, workers=workers, **options)
