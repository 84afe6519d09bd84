"""Logging of every modelport process: one format, the request id on every line.

Server workers are separate processes that uvicorn starts without our configuration, so each
worker calls :func:`configure_logging` itself (as does the CLI's own process). ``text`` is for
people; ``json`` is one object per line for log shippers, and carries the W3C trace and span
ids of a request that came with a ``traceparent`` (so a tracing backend finds its lines).
"""

from __future__ import annotations

import contextvars
import logging
import sys
from datetime import UTC, datetime
from typing import NamedTuple

import orjson

from modelport.config import LogFormat, Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class RequestIds(NamedTuple):
    request_id: str
    trace_id: str | None = None
    span_id: str | None = None


current_request: contextvars.ContextVar[RequestIds] = contextvars.ContextVar(
    "modelport_request",
    default=RequestIds("-"),  # noqa: B039 - a tuple: immutable, whatever ruff infers
)
"""The ids of the request being handled by this task (request id ``-`` outside a request)."""


class RequestIdFilter(logging.Filter):
    """Adds ``request_id``, ``trace_id`` and ``span_id`` to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id, record.trace_id, record.span_id = current_request.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        trace_id = getattr(record, "trace_id", None)
        if trace_id is not None:
            entry["trace_id"] = trace_id
            entry["span_id"] = getattr(record, "span_id", None)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure_logging(settings: Settings) -> None:
    """Root handler on stderr in the configured format; quiet third-party chatter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if settings.log_format is LogFormat.JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # uvicorn writes an access line whenever its logger has a handler anywhere up the tree:
    # without this, every worker of `--workers N` (which sets up logging after uvicorn did)
    # logged each request, MODELPORT_ACCESS_LOG=false or not
    logging.getLogger("uvicorn.access").propagate = settings.access_log
