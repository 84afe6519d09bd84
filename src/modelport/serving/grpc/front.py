"""What every gRPC call gets, whichever method: the front door of the gRPC transport.

As :mod:`modelport.serving.http.front` does for HTTP: a request context with the caller's
request id (metadata ``x-request-id``, else the request's own ``id``, else ``traceparent``, else
a new one), echoed in the initial and trailing metadata (with ``traceresponse`` in a trace)
and set on every log line; errors as a gRPC status with the message the HTTP renderer would
show (a 500 hides its cause, see :func:`~modelport.serving.http.problems.public_detail`);
request metrics for calls the inference service did not count itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

import grpc

from modelport.errors import ModelportError
from modelport.inference import InferenceContext, Transport
from modelport.inference.context import arriving
from modelport.inference.metrics import RequestMetrics
from modelport.logs import current_request
from modelport.security.auth import credential_from
from modelport.security.keys import Scope
from modelport.security.policy import AccessPolicy
from modelport.serving.http.problems import REQUEST_ID, hidden, public_detail

Context = grpc.aio.ServicerContext
"""A call's servicer context, as ``Context[RequestMessage, ResponseMessage]``."""
RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")

STATUS_CODES: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    405: grpc.StatusCode.UNIMPLEMENTED,
    409: grpc.StatusCode.ABORTED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
"""The gRPC status of each HTTP status an error carries; anything else is INTERNAL."""

SERVICE = "/inference.GRPCInferenceService/"


class GrpcFront:
    def __init__(self, metrics: RequestMetrics, access: AccessPolicy) -> None:
        self._metrics = metrics
        self._access = access

    @asynccontextmanager
    async def call(
        self, context: Context[RequestT, ResponseT], method: str, request_id: str = ""
    ) -> AsyncIterator[InferenceContext]:
        """The context of one call; a :class:`ModelportError` raised inside aborts it."""
        ctx = _context(context, request_id)
        token = current_request.set(ctx.log_ids())
        metadata: tuple[tuple[str, str], ...] = ((REQUEST_ID, ctx.request_id),)
        if ctx.trace is not None:
            metadata += (("traceresponse", ctx.trace.traceresponse),)
        status: int | None = None  # stays None when the client cancels: nobody is answered
        try:
            await context.send_initial_metadata(metadata)
            context.set_trailing_metadata(metadata)
            if self._access.required:
                key = await self._access.authenticator.authenticate(_credential(context))
                ctx.caller = None if key is None else key.id
            yield ctx
            status = 200
        except ModelportError as exc:
            status = exc.status
            await _abort(context, exc, ctx.request_id, method)
        except Exception as exc:
            status = 500
            await _abort(context, hidden(exc), ctx.request_id, method)
        finally:
            current_request.reset(token)
            if status is not None:
                self._metrics.answered(ctx, status)

    def authorise(self, ctx: InferenceContext, scope: Scope, model: str | None = None) -> None:
        """For calls the inference service does not admit itself (metadata, readiness)."""
        key = self._access.authenticator.key(ctx.caller)
        self._access.check(key, scope, model, public_ok=True)


def _credential(context: Context[RequestT, ResponseT]) -> str | None:
    """The key in metadata ``authorization: Bearer …`` or ``x-api-key``, as over HTTP."""
    found: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if key in ("authorization", "x-api-key") and isinstance(value, str):
            found.setdefault(key, value)
    return credential_from(found.get("authorization"), found.get("x-api-key"))


def _context(context: Context[RequestT, ResponseT], request_id: str) -> InferenceContext:
    wanted: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if key in (REQUEST_ID, "traceparent", "x-unit-id") and isinstance(value, str):
            wanted.setdefault(key, value)
    return arriving(
        Transport.GRPC,
        wanted.get(REQUEST_ID) or request_id or None,
        wanted.get("traceparent"),
        wanted.get("x-unit-id"),
    )


async def _abort(
    context: Context[RequestT, ResponseT], exc: ModelportError, request_id: str, method: str
) -> None:
    trailing = [(REQUEST_ID, request_id)]
    trailing += [(name.lower(), value) for name, value in exc.headers().items()]
    await context.abort(
        STATUS_CODES.get(exc.status, grpc.StatusCode.INTERNAL),
        public_detail(exc, request_id, SERVICE + method),
        tuple(trailing),
    )
