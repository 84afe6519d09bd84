"""Inference routes: declared once per protocol, answered by :mod:`.front`, documented in OpenAPI.

A handler receives an :class:`HttpCall` (the request context, path and query parameters, the
headers a codec may need, the whole body) and the inference service, and returns an
:class:`HttpAnswer`. It decodes nothing itself: it names the target and hands a codec call to
``service.infer``, then encodes the answer with the same codec.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from modelport.inference import InferenceContext, InferenceService, Transport
from modelport.security.keys import Scope
from modelport.serving.http.access import security_of

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class HttpCall:
    ctx: InferenceContext
    params: dict[str, str]
    query: dict[str, str]
    headers: dict[bytes, bytes]
    """Only the headers a codec reads (content-type, inference-header-content-length, ...)."""
    body: bytes

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    body: bytes
    media_type: str = JSON
    headers: Sequence[tuple[bytes, bytes]] = ()


Handler = Callable[[HttpCall, InferenceService], Awaitable[HttpAnswer]]


@dataclass(frozen=True, slots=True)
class HotRoute:
    path: str
    handler: Handler
    transport: Transport
    summary: str
    body: dict[str, Any]
    query: tuple[str, ...]


@dataclass
class HotRoutes:
    """The inference routes of one protocol, declared with ``@routes.post(...)``."""

    tag: str
    transport: Transport
    routes: list[HotRoute] = field(default_factory=list)

    def post(
        self, path: str, *, summary: str, body: dict[str, Any], query: tuple[str, ...] = ()
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append(HotRoute(path, handler, self.transport, summary, body, query))
            return handler

        return register


def document(app: FastAPI, groups: Sequence[HotRoutes]) -> None:
    """Describe the inference routes in ``app``'s OpenAPI document, and the answers of
    every operation that needs a key."""
    hot = [(group.tag, route) for group in groups for route in group.routes]
    build_schema = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build_schema()
            for tag, route in hot:
                schema["paths"].setdefault(route.path, {})["post"] = _operation(tag, route)
            for operations in schema["paths"].values():
                for operation in operations.values():
                    _describe_errors(operation)
            # FastAPI's own 422 body; every error here is a Problem (problems.py renders it)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                components.pop(unused, None)
            components["Problem"] = PROBLEM_SCHEMA
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


AUTH_RESPONSES = {
    "401": "No valid API key where one is required",
    "403": "The key's scope or model list does not cover this",
}
ERRORS = {
    "4XX": "The request is wrong: unparseable, unknown model, input that does not fit, ...",
    "5XX": "Not ready yet (503 with Retry-After), or the model itself failed (500)",
}
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; V1/V2 routes add `error`, MLflow routes "
    "`error_code` and `message`",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code", "instance", "request_id"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "pointer": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["pointer", "message"],
                "properties": {"pointer": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "error": {"type": "string"},
        "error_code": {"type": "string"},
        "message": {"type": "string"},
    },
}


def _describe_errors(operation: dict[str, Any]) -> None:
    """Every error answer of ``operation`` is problem+json: the ones it names (FastAPI's 422
    included), 401/403 where a key is needed, and any other 4xx or 5xx."""
    responses: dict[str, Any] = operation["responses"]
    if operation.get("security"):
        for status, description in AUTH_RESPONSES.items():
            responses[status] = {"description": description}
    for status, description in ERRORS.items():
        responses.setdefault(status, {"description": description})
    for status, response in responses.items():
        if status[0] in "45":
            response["content"] = PROBLEM


def _operation(tag: str, route: HotRoute) -> dict[str, Any]:
    names = [part[1:-1] for part in route.path.replace(":", "/").split("/") if part.startswith("{")]
    parameters = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
    ]
    parameters += [
        {"name": q, "in": "query", "required": False, "schema": {"type": "string"}}
        for q in route.query
    ]
    return {
        "tags": [tag],
        "summary": route.summary,
        "operationId": f"{route.handler.__module__}.{route.handler.__name__}",
        "parameters": parameters,
        "security": security_of(Scope.PREDICT),
        **route.body,
        "responses": {
            "200": {"description": "Predictions"},
            "4XX": {"description": "The request is wrong; the problem names the bad field"},
        },
    }
