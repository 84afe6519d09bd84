"""The request context: who asked what, through which transport, and what answered.

One :class:`InferenceContext` is made for every request on every transport (HTTP, gRPC, a job,
a stream message). The router fills in what it resolved, the service whether the cache
answered; observers receive it with the outcome. The request's ids are also kept in a context
variable (:data:`modelport.logs.current_request`) so every log line written while the
request is handled carries them.
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from dataclasses import dataclass, field
from enum import StrEnum

from modelport.inference.trace import TraceContext
from modelport.logs import RequestIds


class Transport(StrEnum):
    """How a request arrived; the ``protocol`` label of request metrics."""

    V1 = "v1"
    V2 = "v2"
    MLFLOW = "mlflow"
    GRPC = "grpc"
    API = "api"
    JOB = "job"
    BATCH = "batch"
    STREAM = "stream"


@dataclass(slots=True)
class InferenceContext:
    request_id: str
    transport: Transport
    reference: str = ""
    """What the caller named (``iris@production``, ``iris/3``); empty for the default model."""
    unit_id: str | None = None
    """Randomisation unit (a user, a session) for sticky routing; from ``X-Unit-Id``."""
    caller: str | None = None
    """Id of the API key the request authenticated with; None when it sent none."""
    started: float = field(default_factory=time.perf_counter)
    deployment: str | None = None
    """The deployment the reference named; None when it named a model."""
    model: str | None = None
    version: int | None = None
    slot: str | None = None
    """Which of a deployment's slots answered (``primary`` for a plain model)."""
    experiment: str | None = None
    """The experiment this request's unit is enrolled in (the slot is then its variant)."""
    cached: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    """For the caller, beside the answer (rate-limit state); transports send them along."""
    reported: bool = False
    """Whether observers have seen this request; transports count the others themselves."""
    trace: TraceContext | None = None
    """The W3C trace the request arrived in (``traceparent``); None outside one."""
    admitted: bool = False
    """The caller was admitted before this context existed (a job, when it was submitted):
    keys and budgets are not checked, or charged, a second time."""

    def log_ids(self) -> RequestIds:
        """What each log line written for this request carries."""
        if self.trace is None:
            return RequestIds(self.request_id)
        return RequestIds(self.request_id, self.trace.trace_id, self.trace.span_id)


_UNSAFE = re.compile(r"[^\x21-\x7e]")
MAX_ID_LENGTH = 128


def request_id_from(request_id: str | None, trace: TraceContext | None) -> str:
    """The caller's ``X-Request-Id``, else the id of the W3C trace it is in, else a new id.

    A caller's id is only kept when it is short printable ASCII: it is echoed in a header and
    written to logs, so it must not carry line breaks or control characters.
    """
    if request_id and len(request_id) <= MAX_ID_LENGTH and not _UNSAFE.search(request_id):
        return request_id
    if trace is not None:
        return trace.trace_id
    return f"{_PROCESS_PREFIX}{next(_SEQUENCE):016x}"


# A new id is this process's random prefix and a counter: unique across workers and restarts,
# and no random draw per request (uuid4 was ~1.5 % of a small model's request under load).
_PROCESS_PREFIX = secrets.token_hex(8)
_SEQUENCE = itertools.count()


def unit_id_from(value: str | None) -> str | None:
    if value and len(value) <= MAX_ID_LENGTH and not _UNSAFE.search(value):
        return value
    return None


def arriving(
    transport: Transport, request_id: str | None, traceparent: str | None, unit_id: str | None
) -> InferenceContext:
    """The context of a request from what its headers (or metadata) say about it."""
    trace = TraceContext.parse(traceparent)
    return InferenceContext(
        request_id_from(request_id, trace),
        transport,
        unit_id=unit_id_from(unit_id),
        trace=trace,
    )
