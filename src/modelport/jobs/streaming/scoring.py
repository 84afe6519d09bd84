"""One stream message through the inference service, and what it leaves for the sink or the
dead-letter stream.

A message's body field holds what a job's body holds (a V1, V2 or MLflow JSON inference
body, or CSV with a ``content_type`` field), read with the jobs' codecs, so a message is
answered exactly as a job with the same body would be. Each message is its own request,
under an id derived from its stream id: metered, logged and drift-watched like an online
request, with ``protocol="stream"``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import orjson

from modelport.errors import MalformedRequestError, ModelportError
from modelport.inference.context import MAX_ID_LENGTH, InferenceContext, Transport
from modelport.inference.service import OFFLOAD_BYTES, Answer, InferenceService
from modelport.jobs.execution import PASSING
from modelport.jobs.formats import JobFormat, JobRequest
from modelport.jobs.streaming.source import Fields, Message
from modelport.logs import current_request

log = logging.getLogger("modelport.jobs.streaming")

CONTENT_TYPE = b"content_type"
"""An optional field naming the body's media type (``text/csv`` for an MLflow CSV body)."""
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Outcome:
    """At most one of: an output entry, a dead letter, or an error that may pass; none for
    an entry deleted while it was pending, which is only acked."""

    message: Message
    output: Fields | None = None
    dead: Fields | None = None
    passing: ModelportError | None = None


@dataclass(frozen=True, slots=True)
class MessageScorer:
    service: InferenceService
    model: str
    """The route's name: what every message is predicted with."""
    stream: str
    """The source stream's name, part of each request id."""
    field: bytes = b"body"
    format: JobFormat | None = None
    """None: told from each body, as for a job submitted without ``?format=``."""

    def request_id(self, message: Message) -> str:
        """``<stream>:<message id>``; the message id alone past the length ids are kept to."""
        named = f"{self.stream}:{message.id}"
        return named if len(named) <= MAX_ID_LENGTH else message.id

    async def score(self, message: Message) -> Outcome:
        ctx = InferenceContext(self.request_id(message), Transport.STREAM, admitted=True)
        token = current_request.set(ctx.log_ids())
        try:
            return await self._score(message, ctx)
        finally:
            current_request.reset(token)

    async def _score(self, message: Message, ctx: InferenceContext) -> Outcome:
        try:
            request = self._request(message)
            answer = await self.service.infer(
                ctx, self.model, None, request.decoder(), len(request.body)
            )
            body = await _encoded(request, answer)
        except PASSING as exc:
            return Outcome(message, passing=exc)
        except ModelportError as exc:
            return Outcome(message, dead=self.dead_letter(message, exc))
        except Exception as exc:
            log.exception("message %s: unexpected error", message.id)
            error = ModelportError(f"unexpected error: {type(exc).__name__}: {exc}")
            return Outcome(message, dead=self.dead_letter(message, error))
        record = answer.target.record
        output = {
            b"id": message.id.encode(),
            b"model": record.name.encode(),
            b"version": str(record.version).encode(),
            b"body": body,
        }
        return Outcome(message, output=output)

    def _request(self, message: Message) -> JobRequest:
        body = message.fields.get(self.field)
        if body is None:
            raise MalformedRequestError(
                f"the message has no {self.field.decode()!r} field (fields: "
                f"{', '.join(sorted(f.decode(errors='replace') for f in message.fields))})"
            )
        content_type = message.fields.get(CONTENT_TYPE)
        media_type = content_type.decode(errors="replace") if content_type else JSON
        return JobRequest.submitted(body, media_type, format=self.format)

    def dead_letter(self, message: Message, error: ModelportError) -> Fields:
        """The message's own fields, plus ``source_id`` and ``error`` (a problem object)."""
        problem: dict[str, Any] = error.to_problem()
        problem["request_id"] = self.request_id(message)
        problem["deliveries"] = message.deliveries
        log.warning("message %s: dead-lettered: %s", message.id, error.detail)
        error_field = orjson.dumps(problem)
        return {**message.fields, b"source_id": message.id.encode(), b"error": error_field}


async def _encoded(request: JobRequest, answer: Answer[Any]) -> bytes:
    """The answer's body; on a thread when the request was large (so is the answer)."""
    record, outputs, extras = answer.target.record, answer.outputs, answer.extras
    if len(request.body) >= OFFLOAD_BYTES:
        return await asyncio.to_thread(request.encode, record, outputs, extras)
    return request.encode(record, outputs, extras)
