"""Running the server from the CLI: uvicorn with graceful drain on SIGTERM."""

from __future__ import annotations

import logging

import uvicorn

from modelport.config import Settings
from modelport.serving import create_app


def run_server(settings: Settings, models: list[str]) -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests get ``drain_timeout_s`` to finish."""
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    app = create_app(settings, models)
    config = uvicorn.Config(app, host=settings.host, port=settings.port,
                            log_level=settings.log_level, access_log=False,
                            timeout_graceful_shutdown=int(settings.drain_timeout_s),
                            loop="uvloop", http="httptools")
    uvicorn.Server(config).run()
