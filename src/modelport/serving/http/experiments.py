"""``/api/experiments``: apply, start, stop, promote and read A/B experiments (a ``deploy``
key's work), and ``POST /v1/events``: the outcomes they are judged on (a ``predict`` key's,
like feedback).

The body of an apply is the Experiment document as JSON; errors point at the field. Starting,
ramping, stopping and promoting move the deployment's traffic: this process's replica sees it
at once, the others within ``deployment_poll_s``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from modelport.experiments.events import EventStore, MetricEvent
from modelport.experiments.spec import parse_document
from modelport.experiments.store import MAX_HISTORY, ExperimentStore
from modelport.security.keys import Scope
from modelport.serving.http.access import actor_of, changes, requires
from modelport.serving.http.state import serving_state

MAX_EVENTS = 10_000
MAX_RESAMPLES = 20_000

router = APIRouter(prefix="/api", tags=["experiments"])
reader = APIRouter(dependencies=[requires(Scope.READ)])
deployer = APIRouter(dependencies=changes(Scope.DEPLOY))
events = APIRouter(tags=["experiments"], dependencies=[requires(Scope.PREDICT)])

_EXAMPLE = {
    "apiVersion": "modelport/v1",
    "kind": "Experiment",
    "metadata": {"name": "fraud-v7"},
    "spec": {
        "deployment": "fraud",
        "unit": "user",
        "primaryMetric": {"name": "converted", "type": "binary"},
        "guardrails": [{"name": "refunds", "type": "numeric", "better": "lower"}],
        "sampleSize": 20000,
        "ramp": {"steps": [5, 25, 100], "interval": "1h", "minUnits": 200},
    },
}


class Reason(BaseModel):
    reason: str = Field("", max_length=1000, description="Why: kept in the history.")


class Promotion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variant: str = Field(min_length=1, max_length=63, description="The winning slot.")
    alias: str | None = Field(
        None,
        min_length=1,
        max_length=63,
        description="The alias to move to the winner's version; default: the control's.",
    )
    reason: str = Field("", max_length=1000)


def _store(request: Request) -> ExperimentStore:
    return ExperimentStore(serving_state(request).registry)


def _changed(request: Request) -> None:
    """The deployment's traffic changed: let this replica follow it now."""
    rollouts = serving_state(request).rollouts
    if rollouts is not None:
        rollouts.watcher.wake()


@reader.get("/experiments")
async def list_experiments(
    request: Request, deployment: Annotated[str | None, Query(max_length=63)] = None
) -> dict[str, Any]:
    listed = await run_in_threadpool(lambda: _store(request).experiments(deployment))
    return {"experiments": [e.to_dict() for e in listed]}


@deployer.post("/experiments", status_code=200)
async def apply_experiment(
    request: Request,
    response: Response,
    document: dict[str, Any] = Body(openapi_examples={"ab": {"value": _EXAMPLE}}),
) -> dict[str, Any]:
    """Create or update: 201 when created, 200 otherwise. A running experiment keeps its
    deployment, control and unit."""
    spec = parse_document(document)
    experiment, changed = await run_in_threadpool(
        lambda: _store(request).apply(spec, actor=actor_of(request))
    )
    response.status_code = 201 if changed and experiment.revision == 1 else 200
    _changed(request)
    return {**experiment.to_dict(), "changed": changed}


@reader.get("/experiments/{name}")
async def get_experiment(request: Request, name: str) -> dict[str, Any]:
    return (await run_in_threadpool(lambda: _store(request).get(name))).to_dict()


@reader.get("/experiments/{name}/report")
async def experiment_report(
    request: Request,
    name: str,
    bootstrap: Annotated[
        int, Query(ge=0, le=MAX_RESAMPLES, description="Bootstrap resamples; 0: none.")
    ] = 0,
    seed: Annotated[int, Query(ge=0, description="The bootstrap's seed.")] = 0,
) -> dict[str, Any]:
    """Every metric of every variant against the control, the SRM check and the guardrails
    (definitions: docs/experiment-statistics.md)."""
    registry = serving_state(request).registry

    def report() -> dict[str, Any]:
        # loaded on first use: the statistics (scipy.stats) are no part of a server's start
        from modelport.experiments.report import Bootstrap, Reports

        experiment = _store(request).get(name)
        resampling = Bootstrap(bootstrap, seed) if bootstrap else None
        return Reports(registry).report(experiment, resampling).to_dict()

    return await run_in_threadpool(report)


@reader.get("/experiments/{name}/history")
async def experiment_history(
    request: Request, name: str, limit: int = Query(100, ge=1, le=MAX_HISTORY)
) -> dict[str, Any]:
    history = await run_in_threadpool(lambda: _store(request).history(name, limit))
    return {"events": [e.to_dict() for e in history]}


@deployer.post("/experiments/{name}/start")
async def start_experiment(
    request: Request, name: str, body: Reason | None = None
) -> dict[str, Any]:
    """Enrol the first ramp step's share of units."""
    reason = body.reason if body else ""
    experiment = await run_in_threadpool(
        lambda: _store(request).start(name, actor=actor_of(request), reason=reason)
    )
    _changed(request)
    return experiment.to_dict()


@deployer.post("/experiments/{name}/stop")
async def stop_experiment(
    request: Request, name: str, body: Reason | None = None
) -> dict[str, Any]:
    """End it: all traffic back on the control."""
    reason = (body.reason if body else "") or "stopped by operator"
    experiment = await run_in_threadpool(
        lambda: _store(request).stop(name, actor=actor_of(request), reason=reason)
    )
    assert experiment is not None  # no revision given: the stop always applies
    _changed(request)
    return experiment.to_dict()


@deployer.post("/experiments/{name}/promote")
async def promote_experiment(request: Request, name: str, body: Promotion) -> dict[str, Any]:
    """The winner takes all traffic; the control's alias (or ``alias``) moves to it."""
    experiment = await run_in_threadpool(
        lambda: _store(request).promote(
            name, body.variant, alias=body.alias, actor=actor_of(request), reason=body.reason
        )
    )
    _changed(request)
    return experiment.to_dict()


@deployer.delete("/experiments/{name}")
async def delete_experiment(request: Request, name: str) -> dict[str, Any]:
    await run_in_threadpool(lambda: _store(request).delete(name, actor=actor_of(request)))
    return {"name": name, "deleted": True}


class EventItem(BaseModel):
    """One outcome: a metric's value for a unit (or for the request that served it)."""

    model_config = ConfigDict(extra="forbid")

    metric: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]{0,62}$")
    value: float = Field(allow_inf_nan=False, description="1/0 for a binary metric.")
    unit_id: str | None = Field(None, min_length=1, max_length=128)
    request_id: str | None = Field(None, min_length=1, max_length=128)
    at: datetime | None = Field(None, description="When it happened; default: now.")

    @model_validator(mode="after")
    def _keyed(self) -> EventItem:
        if self.unit_id is None and self.request_id is None:
            raise ValueError("name the unit_id, the request_id, or both")
        return self


class EventBatch(BaseModel):
    """``{"events": [item, …]}``, or one item alone."""

    model_config = ConfigDict(extra="forbid")

    events: list[EventItem] = Field(min_length=1, max_length=MAX_EVENTS)

    @model_validator(mode="before")
    @classmethod
    def _one_item(cls, data: Any) -> Any:
        if isinstance(data, dict) and "events" not in data:
            return {"events": [data]}
        return data


@events.post("/v1/events")
async def post_events(request: Request, body: EventBatch) -> dict[str, int]:
    """Store outcomes; experiments count them for units exposed before them."""
    store = EventStore(serving_state(request).registry.database)
    items = [MetricEvent(e.metric, e.value, e.unit_id, e.request_id, e.at) for e in body.events]
    return {"accepted": await run_in_threadpool(store.record, items)}


# last: including copies the routes defined so far
router.include_router(reader)
router.include_router(deployer)
