"""Request body size limit, enforced before a route reads the body."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelport.errors import PayloadTooLargeError
from modelport.serving.problems import problem_response


class BodyLimitMiddleware:
    """413 for a declared Content-Length over the limit; stops a chunked body at the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise self._error()
            return message

        await self.app(scope, counting_receive, send)

    def _error(self) -> PayloadTooLargeError:
        return PayloadTooLargeError(f"request body exceeds the limit of {self.max_bytes} bytes "
                                    "(MODELPORT_MAX_BODY_BYTES)")

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(Request(scope), self._error())
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
