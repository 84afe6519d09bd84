"""Feedback and quality API: ground truth for logged predictions (``POST /v1/feedback``) and
the quality it gives each version (``GET /api/quality``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator
from starlette.concurrency import run_in_threadpool

from modelport.durations import parse_duration
from modelport.monitoring.feedback import Feedback, FeedbackStore
from modelport.monitoring.quality import quality_reports_of
from modelport.security.keys import Scope
from modelport.serving.http.access import requires
from modelport.serving.http.state import serving_state

MAX_ITEMS = 10_000
MAX_ROWS_PER_REQUEST = 100_000

writer = APIRouter(tags=["feedback"], dependencies=[requires(Scope.PREDICT)])
reader = APIRouter(tags=["feedback"], dependencies=[requires(Scope.READ)])


class FeedbackItem(BaseModel):
    """One truth: by ``request_id`` (``row`` of it, or ``truths`` for each of its rows), or by
    ``unit_id`` (its latest logged request at or before ``at``)."""

    model_config = ConfigDict(extra="forbid")

    request_id: str | None = Field(None, min_length=1, max_length=128)
    unit_id: str | None = Field(None, min_length=1, max_length=128)
    row: int = Field(0, ge=0, le=MAX_ROWS_PER_REQUEST)
    truth: JsonValue = None
    truths: list[JsonValue] | None = Field(None, min_length=1, max_length=MAX_ROWS_PER_REQUEST)
    at: datetime | None = None

    @model_validator(mode="after")
    def _one_of_each(self) -> FeedbackItem:
        if (self.request_id is None) == (self.unit_id is None):
            raise ValueError("name exactly one of request_id and unit_id")
        if (self.truth is None) == (self.truths is None):
            raise ValueError("give exactly one of truth and truths")
        if self.truths is not None and self.unit_id is not None:
            raise ValueError("truths (one per row) needs a request_id")
        return self

    def feedback(self) -> list[Feedback]:
        if self.truths is not None:
            return [
                Feedback(truth, self.request_id, row, at=self.at)
                for row, truth in enumerate(self.truths)
            ]
        return [Feedback(self.truth, self.request_id, self.row, self.unit_id, self.at)]


class FeedbackBatch(BaseModel):
    """``{"feedback": [item, …]}``, or one item alone (read as a batch of one: its errors
    point at ``/feedback/0/…``)."""

    model_config = ConfigDict(extra="forbid")

    feedback: list[FeedbackItem] = Field(min_length=1, max_length=MAX_ITEMS)

    @model_validator(mode="before")
    @classmethod
    def _one_item(cls, data: Any) -> Any:
        if isinstance(data, dict) and "feedback" not in data:
            return {"feedback": [data]}
        return data


@writer.post("/v1/feedback")
async def post_feedback(request: Request, body: FeedbackBatch) -> dict[str, int]:
    """Store ground truth; ``unmatched`` counts truths whose request is not (yet) logged."""
    feedback = [f for item in body.feedback for f in item.feedback()]
    store = FeedbackStore(serving_state(request).registry.database)
    receipt = await run_in_threadpool(store.record, feedback)
    return {"accepted": receipt.accepted, "unmatched": receipt.unmatched}


@reader.get("/api/quality")
async def get_quality(
    request: Request,
    model: Annotated[str, Query(description="iris, iris/3 or iris@production.")],
    window: Annotated[str, Query(description="How far back: 1h, 1d, 7d.")] = "1d",
) -> dict[str, Any]:
    """Quality of the version over the labelled answers of the window."""
    span = parse_duration(window, field="window")
    state = serving_state(request)
    record = await run_in_threadpool(state.registry.resolve, model)
    reports = quality_reports_of(state.settings, state.registry)
    result = await run_in_threadpool(reports.report, record.name, record.version, span)
    return result.to_dict()
