"""W3C ``traceparent`` parsing: what is taken, and what starts a trace afresh."""

from __future__ import annotations

import pytest

from modelport.inference.context import Transport, arriving, request_id_from
from modelport.inference.trace import TraceContext

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def test_a_valid_header_gives_its_trace_and_a_new_span() -> None:
    trace = TraceContext.parse(f"00-{TRACE}-{PARENT}-01")
    assert trace is not None
    assert (trace.trace_id, trace.parent_id, trace.flags) == (TRACE, PARENT, "01")
    assert len(trace.span_id) == 16
    assert trace.span_id != PARENT
    assert trace.traceresponse == f"00-{TRACE}-{trace.span_id}-01"


def test_a_later_version_may_carry_more_fields() -> None:
    trace = TraceContext.parse(f"cc-{TRACE}-{PARENT}-00-what-comes-next")
    assert trace is not None
    assert trace.trace_id == TRACE
    assert trace.traceresponse.startswith("00-")  # we answer in the version we know


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        f"00-{TRACE}-{PARENT}",
        f"00-{TRACE}-{PARENT}-01-extra",  # version 00 has exactly four fields
        f"ff-{TRACE}-{PARENT}-01",
        f"00-{'0' * 32}-{PARENT}-01",
        f"00-{TRACE}-{'0' * 16}-01",
        f"00-{TRACE.upper()}-{PARENT}-01",
        f"00-{TRACE[:-1]}-{PARENT}-01",
        f"00-{TRACE}-{PARENT}-1",
        f"0-{TRACE}-{PARENT}-01",
        f"00-{TRACE}-{PARENT}-0g",
        f"00-{TRACE}-{PARENT}-01\n",
    ],
)
def test_an_invalid_header_is_no_trace(header: str | None) -> None:
    assert TraceContext.parse(header) is None


def test_the_request_id_prefers_the_callers_then_the_trace() -> None:
    trace = TraceContext.parse(f"00-{TRACE}-{PARENT}-01")
    assert request_id_from("mine", trace) == "mine"
    assert request_id_from(None, trace) == TRACE
    assert request_id_from("bad\nid", trace) == TRACE
    ctx = arriving(Transport.V1, None, f"00-{TRACE}-{PARENT}-01", "user-1")
    assert ctx.request_id == TRACE
    assert ctx.unit_id == "user-1"
    assert ctx.log_ids() == (TRACE, TRACE, ctx.trace.span_id if ctx.trace else None)
    assert arriving(Transport.V1, "abc", None, None).log_ids() == ("abc", None, None)
