"""Streaming scoring: messages of a Redis stream predicted as they arrive, each answered in
a sink stream (``modelport stream``). See docs/streaming.md."""

from modelport.jobs.streaming.consumer import Counts, StreamOptions, consume
from modelport.jobs.streaming.source import StreamAddress

__all__ = ["Counts", "StreamAddress", "StreamOptions", "consume"]
