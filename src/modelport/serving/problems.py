"""The one error renderer: RFC 9457 problem+json, plus each inference protocol's own keys.

V1 and V2 clients (tritonclient) read ``error``; MLflow clients read ``error_code`` and
``message``. Every route's errors go through :func:`problem_response`, so one body
satisfies both the project convention and the client in front of it.
"""

from __future__ import annotations

import logging
import uuid
from enum import StrEnum
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

log = logging.getLogger("modelport.serving")

PROBLEM_JSON = "application/problem+json"
REQUEST_ID = "x-request-id"


class Protocol(StrEnum):
    V1 = "v1"
    V2 = "v2"
    MLFLOW = "mlflow"
    API = "api"


_MLFLOW_PATHS = ("/invocations", "/ping", "/health", "/version")


def protocol_of(path: str) -> Protocol:
    if path.startswith("/v2"):
        return Protocol.V2
    if path.startswith("/v1/"):
        return Protocol.V1
    if path in _MLFLOW_PATHS or (path.startswith("/models/") and path.endswith("/invocations")):
        return Protocol.MLFLOW
    return Protocol.API


_MLFLOW_CODES = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                 404: "RESOURCE_DOES_NOT_EXIST", 409: "RESOURCE_ALREADY_EXISTS",
                 413: "BAD_REQUEST", 415: "BAD_REQUEST", 422: "INVALID_PARAMETER_VALUE",
                 429: "REQUEST_LIMIT_EXCEEDED", 503: "TEMPORARILY_UNAVAILABLE"}


def problem_body(path: str, status: int, body: dict[str, Any]) -> dict[str, Any]:
    """Add the protocol's own error keys to a problem body."""
    message = str(body.get("detail") or body.get("title"))
    match protocol_of(path):
        case Protocol.V1 | Protocol.V2:
            body["error"] = message
        case Protocol.MLFLOW:
            body["error_code"] = _MLFLOW_CODES.get(status, "INTERNAL_ERROR")
            body["message"] = message
    return body


def problem_response(request: Request, exc: ModelportError) -> Response:
    request_id = request.headers.get(REQUEST_ID) or uuid.uuid4().hex
    body = exc.to_problem()
    body["instance"] = request.url.path
    body["request_id"] = request_id
    headers = {REQUEST_ID: request_id}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return Response(orjson.dumps(problem_body(request.url.path, exc.status, body)),
                    status_code=exc.status, media_type=PROBLEM_JSON, headers=headers)


_HTTP_ERRORS: dict[int, type[ModelportError]] = {
    404: NotFoundError, 405: MethodNotAllowedError, 413: PayloadTooLargeError}


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception through :func:`problem_response`."""

    async def on_modelport_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ModelportError)
        if exc.status == 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc.detail,
                      exc_info=exc)
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
        errors = [FieldError("/" + "/".join(str(p) for p in e["loc"][1:]), e["msg"])
                  for e in exc.errors()]
        detail = "; ".join(f"{e.pointer}: {e.message}" for e in errors) or "invalid request"
        return problem_response(request, InvalidInputError(detail, errors=errors))

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        hidden = ModelportError("an unexpected error occurred; the request id is in the logs")
        return problem_response(request, hidden)

    app.add_exception_handler(ModelportError, on_modelport_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
