"""W3C Trace Context: a request that arrives inside a distributed trace stays in it.

A caller (or the proxy before us) that traces sends a ``traceparent`` header.
modelport does not export spans itself; it takes part in the trace the way a log-correlating
service does: the request's handling is one span, with its own id, whose parent is the
caller's span. That span's ids are on every JSON log line of the request, the trace id is the
request id when the caller sent no ``X-Request-Id``, and the answer carries a
``traceresponse`` header (Trace Context Level 2) naming the span, so a client can find the
server's side of its call.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True, slots=True)
class TraceContext:
    trace_id: str
    """32 lower-case hex digits, not all zero: the trace the request belongs to."""
    parent_id: str
    """The caller's span (16 hex digits)."""
    span_id: str
    """This server's span for the request: new for every request."""
    flags: str
    """Two hex digits; ``01`` = the caller samples this trace."""

    @classmethod
    def parse(cls, traceparent: str | None) -> TraceContext | None:
        """The context a ``traceparent`` header carries; None when it is absent or invalid
        (the spec says: then start afresh, as if none was sent).

        Version ``00`` is exactly four fields; a later version may append fields, which are
        ignored. Version ``ff``, all-zero ids and upper-case hex are invalid.
        """
        if not traceparent:
            return None
        value = traceparent.strip(" \t")
        parts = value.split("-")
        if len(parts) < 4 or not all(_HEX.fullmatch(part) for part in parts[:4]):
            return None
        version, trace_id, parent_id, flags = parts[:4]
        if len(version) != 2 or version == "ff" or (version == "00" and len(parts) != 4):
            return None
        if len(trace_id) != 32 or len(parent_id) != 16 or len(flags) != 2:
            return None
        if trace_id == "0" * 32 or parent_id == "0" * 16:
            return None
        return cls(trace_id, parent_id, os.urandom(8).hex(), flags)

    @property
    def traceresponse(self) -> str:
        """The answer's ``traceresponse``: this trace and the server's span."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"
