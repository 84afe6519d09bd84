"""The one error renderer: RFC 9457 problem+json, plus each inference protocol's own keys.

V1 and V2 clients (tritonclient) read ``error``; MLflow clients read ``error_code`` and
``message``. Every route's errors, on the fast inference path and on ordinary routes alike,
go through :func:`render`, so one body satisfies both the project convention and the client
in front of it. A 500 never shows its cause to the client: the detail goes to the log with
the request id, and the body carries the id to quote.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from modelport.errors import (
    FieldError,
    InvalidInputError,
    MalformedRequestError,
    MethodNotAllowedError,
    ModelportError,
    NotFoundError,
    PayloadTooLargeError,
)
from modelport.inference import Transport, request_id_from
from modelport.inference.trace import TraceContext

log = logging.getLogger("modelport.serving")

PROBLEM_JSON = "application/problem+json"
REQUEST_ID = "x-request-id"

_MLFLOW_PATHS = ("/invocations", "/ping", "/health", "/version")


def transport_of(path: str) -> Transport:
    """The protocol a path belongs to (its error keys and its metrics label)."""
    if path.startswith("/v2"):
        return Transport.V2
    if path.startswith("/v1/"):
        return Transport.V1
    if path in _MLFLOW_PATHS or (path.startswith("/models/") and path.endswith("/invocations")):
        return Transport.MLFLOW
    return Transport.API


_MLFLOW_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    405: "BAD_REQUEST",
    409: "RESOURCE_ALREADY_EXISTS",
    413: "BAD_REQUEST",
    415: "BAD_REQUEST",
    422: "INVALID_PARAMETER_VALUE",
    429: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "TEMPORARILY_UNAVAILABLE",
}


def problem_body(path: str, status: int, body: dict[str, Any]) -> dict[str, Any]:
    """Add the protocol's own error keys to a problem body."""
    message = str(body.get("detail") or body.get("title"))
    match transport_of(path):
        case Transport.V1 | Transport.V2:
            body["error"] = message
        case Transport.MLFLOW:
            body["error_code"] = _MLFLOW_CODES.get(status, "INTERNAL_ERROR")
            body["message"] = message
    return body


def render(path: str, exc: ModelportError, request_id: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and problem+json body for ``exc`` on ``path``."""
    body = exc.to_problem()
    if exc.status == 500:
        body["detail"] = public_detail(exc, request_id, path)
        body.pop("errors", None)
        body.pop("pointer", None)
    body["instance"] = path
    body["request_id"] = request_id
    headers = {REQUEST_ID: request_id, **exc.headers()}
    return exc.status, headers, orjson.dumps(problem_body(path, exc.status, body))


def public_detail(exc: ModelportError, request_id: str, where: str) -> str:
    """What a client may read of ``exc``: its detail, but of a 500 only the request id to
    quote; the cause goes to the log. The gRPC transport answers with the same text."""
    if exc.status != 500:
        return exc.detail
    log.error(
        "request %s on %s failed: %s", request_id, where, exc.detail, exc_info=exc.__cause__ or exc
    )
    return f"{exc.title}; the cause is in the server log under request id {request_id}"


def hidden(exc: Exception) -> ModelportError:
    """An unexpected exception, as the 500 a client may see (the traceback is logged)."""
    error = ModelportError("an unexpected error occurred")
    error.__cause__ = exc
    return error


def problem_response(request: Request, exc: ModelportError) -> Response:
    status, headers, body = render(request.url.path, exc, request_id_of(request))
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def request_id_of(request: Request) -> str:
    """The id the request was given on arrival (see :mod:`modelport.serving.http.front`)."""
    ctx = request.scope.get("state", {}).get("ctx")
    if ctx is not None:
        return str(ctx.request_id)
    trace = TraceContext.parse(request.headers.get("traceparent"))
    return request_id_from(request.headers.get(REQUEST_ID), trace)


_HTTP_ERRORS: dict[int, type[ModelportError]] = {
    404: NotFoundError,
    405: MethodNotAllowedError,
    413: PayloadTooLargeError,
}


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception of the ordinary routes through :func:`render`."""

    async def on_modelport_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ModelportError)
        return problem_response(request, exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        error_class = _HTTP_ERRORS.get(exc.status_code, MalformedRequestError)
        response = problem_response(request, error_class(str(exc.detail)))
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            FieldError("/" + "/".join(str(p) for p in e["loc"][1:]), e["msg"]) for e in exc.errors()
        ]
        detail = "; ".join(f"{e.pointer}: {e.message}" for e in errors) or "invalid request"
        return problem_response(request, InvalidInputError(detail, errors=errors))

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        return problem_response(request, hidden(exc))

    app.add_exception_handler(ModelportError, on_modelport_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
