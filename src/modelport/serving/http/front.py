"""The front door of the HTTP server: a small ASGI dispatcher in front of the FastAPI app.

Inference routes are matched here and answered directly: the request context is made, the
body read within its limit, the protocol's handler called, the answer (or problem+json) sent.
Starlette's middleware stack, routing and Request objects cost about half of a small model's
request (measured with py-spy; see bench/README.md), and none of it is needed for a POST whose
body a codec reads anyway. Every other request goes to the FastAPI app, with the same request
id, body limit (a model upload has its own, larger one) and request metrics. Either way each
response carries ``X-Request-Id`` and log lines written while it is handled carry the same id.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from modelport.errors import (
    MethodNotAllowedError,
    ModelportError,
    PayloadTooLargeError,
    RequestTimeoutError,
)
from modelport.inference import InferenceContext, InferenceService, Transport
from modelport.inference.context import arriving
from modelport.inference.metrics import RequestMetrics
from modelport.logs import current_request
from modelport.security import keys
from modelport.security.auth import credential_from
from modelport.security.policy import AccessPolicy
from modelport.serving.http.deadlines import Deadlines
from modelport.serving.http.origins import SAFE_METHODS, RequestOrigins, with_cors
from modelport.serving.http.problems import (
    PROBLEM_JSON,
    REQUEST_ID,
    hidden,
    render,
    transport_of,
)
from modelport.serving.http.routes import HotRoute, HttpCall

log = logging.getLogger("modelport.serving")

_WANTED = {
    b"x-request-id",
    b"traceparent",
    b"x-unit-id",
    b"content-length",
    b"content-type",
    b"inference-header-content-length",
    b"authorization",
    b"x-api-key",
    b"host",
    b"origin",
}


RawHeader = tuple[bytes, bytes]
ServedBy = tuple[str | None, int | None, str | None, str | None]
"""(model, version, deployment, slot) of an answer."""
_MAX_SERVED_BY = 1024


class ClientGoneError(Exception):
    """The client disconnected before its body arrived; nobody is left to answer."""


@dataclass(frozen=True, slots=True)
class _Compiled:
    pattern: re.Pattern[str]
    route: HotRoute


@dataclass(frozen=True, slots=True)
class FrontLimits:
    max_body_bytes: int
    max_upload_bytes: int
    request_timeout_s: float
    cors_origins: tuple[str, ...] = ()


class Front:
    def __init__(
        self,
        app: FastAPI,
        routes: Sequence[HotRoute],
        service: InferenceService,
        request_metrics: RequestMetrics,
        limits: FrontLimits,
        access: AccessPolicy,
        origins: RequestOrigins,
    ) -> None:
        self.app = app
        self._access = access
        self._origins = origins
        self._timeout_s = limits.request_timeout_s
        self._deadlines = Deadlines(limits.request_timeout_s)
        self._routes = [_Compiled(re.compile(_regex(r.path)), r) for r in routes]
        self._service = service
        self._metrics = request_metrics
        self._max_body = _Limit(limits.max_body_bytes, "MODELPORT_MAX_BODY_BYTES")
        self._max_upload = _Limit(limits.max_upload_bytes, "MODELPORT_MAX_UPLOAD_BYTES")
        self._served: dict[ServedBy, list[RawHeader]] = {}
        self._entry = with_cors(self._dispatch, limits.cors_origins, sorted(_WANTED))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._entry(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        for compiled in self._routes:
            match = compiled.pattern.match(path)
            if match is not None:
                await self._hot(compiled.route, match.groupdict(), scope, receive, send)
                return
        await self._other(scope, receive, send)

    async def _hot(
        self, route: HotRoute, params: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        headers = _headers(scope)
        ctx = _context(headers, route.transport)
        token = current_request.set(ctx.log_ids())
        extra: Sequence[tuple[bytes, bytes]] = ()
        try:
            if scope["method"] != "POST":
                raise MethodNotAllowedError(
                    f"{scope['method']} is not allowed on {scope['path']}; send POST"
                )
            self._origins.check_host(headers.get(b"host"))
            if self._access.required:
                ctx.caller = await self._caller(headers)
            try:
                with self._deadlines.enforced():
                    body = await self._body(headers, receive)
                    query_string: bytes = scope["query_string"]
                    query = dict(parse_qsl(query_string.decode("latin-1"))) if query_string else {}
                    call = HttpCall(ctx, params, query, headers, body)
                    answer = await route.handler(call, self._service)
            except TimeoutError:
                raise RequestTimeoutError(
                    f"the request took longer than {self._timeout_s:g} s "
                    "(MODELPORT_REQUEST_TIMEOUT_S)"
                ) from None
            status, media_type, content = 200, answer.media_type, answer.body
            extra = [*answer.headers, *self._served_by(ctx)]
            if ctx.headers:
                extra += _encoded(ctx.headers)
        except ClientGoneError:
            return
        except ModelportError as exc:
            status, media_type, content, extra = self._problem(scope, exc, ctx)
        except Exception as exc:
            status, media_type, content, extra = self._problem(scope, hidden(exc), ctx)
        finally:
            current_request.reset(token)
        response = [
            (b"content-type", media_type.encode()),
            (b"content-length", str(len(content)).encode()),
            *_ids(ctx),
            *extra,
        ]
        if status == 413:
            response.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": response})
        await send({"type": "http.response.body", "body": content})
        self._metrics.answered(ctx, status)

    def _served_by(self, ctx: InferenceContext) -> list[tuple[bytes, bytes]]:
        """Which model and version answered (and, for a deployment, which slot): with weights
        and canaries, the caller cannot know otherwise. Encoded once per combination."""
        key = (ctx.model, ctx.version, ctx.deployment, ctx.slot)
        served = self._served.get(key)
        if served is None:
            if len(self._served) >= _MAX_SERVED_BY:  # versions come and go: start afresh
                self._served.clear()
            served = self._served[key] = _served_by(ctx)
        return served

    def _problem(
        self, scope: Scope, exc: ModelportError, ctx: InferenceContext
    ) -> tuple[int, str, bytes, list[tuple[bytes, bytes]]]:
        status, headers, body = render(scope["path"], exc, ctx.request_id)
        extra = _encoded([(name, value) for name, value in headers.items() if name != REQUEST_ID])
        if ctx.version is not None:  # a model was chosen (and failed): say which
            extra.extend(self._served_by(ctx))
        return status, PROBLEM_JSON, body, extra

    async def _caller(self, headers: dict[bytes, bytes]) -> str | None:
        """The id of the key the request carries (401 for a bad one); with authentication
        off, keys are not looked at."""
        if not self._access.required:
            return None
        token = credential_from(_text(headers, b"authorization"), _text(headers, b"x-api-key"))
        key = await self._access.authenticator.authenticate(token)
        return None if key is None else key.id

    async def _body(self, headers: dict[bytes, bytes], receive: Receive) -> bytes:
        if self._max_body.declared_over(headers):
            raise self._max_body.exceeded()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGoneError
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body.size:
                raise self._max_body.exceeded()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _other(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Any other route: FastAPI, with the request id, the body limit and metrics."""
        headers = _headers(scope)
        limit = self._max_upload if _is_upload(scope) else self._max_body
        ctx = _context(headers, transport_of(scope["path"]))
        scope.setdefault("state", {})["ctx"] = ctx
        token = current_request.set(ctx.log_ids())
        status = 500
        ids = _ids(ctx)

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), *ids]
            await send(message)

        received = 0

        async def receiving() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit.size:
                raise limit.exceeded()
            return message

        try:
            try:
                self._origins.check_host(headers.get(b"host"))
                self._origins.check_origin(
                    scope["method"], headers.get(b"origin"), headers.get(b"host")
                )
                ctx.caller = await self._caller(headers)
                if ctx.caller is None and scope["method"] not in SAFE_METHODS:
                    # a change needs a key whatever its body: refuse before FastAPI reads it
                    self._access.check(None, keys.Scope.READ)
                if limit.declared_over(headers):
                    raise limit.exceeded()
            except ModelportError as exc:  # refused before the app runs: host, key, size
                await self._reject(scope, ctx, sending, exc)
            else:
                await self.app(scope, receiving, sending)
        finally:
            current_request.reset(token)
            if scope["path"] != "/metrics":
                self._metrics.answered(ctx, status)

    async def _reject(
        self, scope: Scope, ctx: InferenceContext, send: Send, exc: ModelportError
    ) -> None:
        status, _, content, extra = self._problem(scope, exc, ctx)
        headers = [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(content)).encode()),
            *extra,
        ]
        if status == 413:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})


@dataclass(frozen=True, slots=True)
class _Limit:
    """A body size limit, and the setting that sets it (named in the 413)."""

    size: int
    setting: str

    def declared_over(self, headers: dict[bytes, bytes]) -> bool:
        declared = headers.get(b"content-length")
        return declared is not None and declared.isdigit() and int(declared) > self.size

    def exceeded(self) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"request body exceeds the limit of {self.size} bytes ({self.setting})"
        )


_UPLOAD = re.compile(r"^/api/models/[^/]+/versions$")


def _is_upload(scope: Scope) -> bool:
    """A model upload: its own, larger limit, since the file is streamed to disk."""
    return scope["method"] == "POST" and _UPLOAD.match(scope["path"]) is not None


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {key: value for key, value in scope["headers"] if key in _WANTED}


def _served_by(ctx: InferenceContext) -> list[tuple[bytes, bytes]]:
    """Which model and version answered (and, for a deployment, which slot): with weights
    and canaries, the caller cannot know otherwise."""
    served = [
        (b"x-model-name", (ctx.model or "").encode()),
        (b"x-model-version", str(ctx.version).encode()),
    ]
    if ctx.deployment is not None:
        served.append((b"x-deployment-slot", (ctx.slot or "").encode()))
    return served


def _encoded(headers: Sequence[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode(), value.encode()) for name, value in headers]


def _text(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return None if value is None else value.decode("latin-1")


def _context(headers: dict[bytes, bytes], transport: Transport) -> InferenceContext:
    return arriving(
        transport,
        _text(headers, b"x-request-id"),
        _text(headers, b"traceparent"),
        _text(headers, b"x-unit-id"),
    )


def _ids(ctx: InferenceContext) -> list[tuple[bytes, bytes]]:
    """The headers naming the request in every answer: its id and, in a trace, the span."""
    if ctx.trace is None:
        return [(b"x-request-id", ctx.request_id.encode())]
    return [
        (b"x-request-id", ctx.request_id.encode()),
        (b"traceresponse", ctx.trace.traceresponse.encode()),
    ]


def _regex(path: str) -> str:
    """A route template (``/v1/models/{name}:predict``) as an anchored regex."""
    parts = re.split(r"\{(\w+)\}", path)
    pattern = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts)
    )
    return f"^{pattern}$"
