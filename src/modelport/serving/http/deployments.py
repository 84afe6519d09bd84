"""``/api/deployments``: apply, read and steer deployments (a ``deploy`` key's work).

The body of an apply is the ModelDeployment document as JSON (the YAML of ``modelport apply``
converted); errors point at the field. Changes are recorded with the caller as actor; this
process's replicas pick them up at once, others within ``deployment_poll_s``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from modelport.rollout.spec import parse_document
from modelport.rollout.state import BY_OPERATOR, Action
from modelport.rollout.status import describe
from modelport.rollout.store import MAX_HISTORY, DeploymentStore
from modelport.rollout.telemetry import Telemetry
from modelport.security.keys import Scope
from modelport.serving.http.access import actor_of, changes, requires
from modelport.serving.http.state import serving_state
from modelport.store.tables import utcnow

router = APIRouter(prefix="/api", tags=["deployments"])
reader = APIRouter(dependencies=[requires(Scope.READ)])
deployer = APIRouter(dependencies=changes(Scope.DEPLOY))

_EXAMPLE = {
    "apiVersion": "modelport/v1",
    "kind": "ModelDeployment",
    "metadata": {"name": "fraud"},
    "spec": {
        "strategy": "canary",
        "slots": [
            {"model": "fraud@production", "role": "primary"},
            {"model": "fraud/7", "role": "canary"},
        ],
        "steps": [5, 25, 50, 100],
        "stepInterval": "5m",
        "gates": {"maxErrorRate": 0.01, "maxP99Ms": 50},
    },
}


class Reason(BaseModel):
    reason: str = Field("", max_length=1000, description="Why: kept in the history.")


def _store(request: Request) -> DeploymentStore:
    return DeploymentStore(serving_state(request).registry)


def _changed(request: Request) -> None:
    """Let this process's replica see the change now rather than at its next poll."""
    rollouts = serving_state(request).rollouts
    if rollouts is not None:
        rollouts.watcher.wake()


@reader.get("/deployments")
async def list_deployments(request: Request) -> dict[str, Any]:
    listed = await run_in_threadpool(_store(request).deployments)
    return {"deployments": [d.to_dict() for d in listed]}


@deployer.post("/deployments", status_code=200)
async def apply_deployment(
    request: Request,
    response: Response,
    document: dict[str, Any] = Body(openapi_examples={"canary": {"value": _EXAMPLE}}),
) -> dict[str, Any]:
    """Create or update (``kubectl apply``): 201 when created, 200 otherwise; re-applying the
    same document changes nothing. A changed traffic split restarts the rollout."""
    spec = parse_document(document)
    deployment, changed = await run_in_threadpool(
        lambda: _store(request).apply(spec, actor=actor_of(request))
    )
    response.status_code = 201 if changed and deployment.revision == 1 else 200
    _changed(request)
    return {**deployment.to_dict(), "changed": changed}


@reader.get("/deployments/{name}")
async def get_deployment(request: Request, name: str) -> dict[str, Any]:
    return (await run_in_threadpool(lambda: _store(request).get(name))).to_dict()


@reader.get("/deployments/{name}/status")
async def deployment_status(request: Request, name: str) -> dict[str, Any]:
    """What every live replica serves, whether they all run the current revision, and each
    slot's figures over the gate window (all replicas summed)."""
    state = serving_state(request)
    telemetry = Telemetry(state.registry.database, "api")

    def read() -> dict[str, Any]:
        return describe(_store(request).get(name), telemetry, utcnow())

    return await run_in_threadpool(read)


@reader.get("/deployments/{name}/history")
async def deployment_history(
    request: Request, name: str, limit: int = Query(100, ge=1, le=MAX_HISTORY)
) -> dict[str, Any]:
    """Every transition, newest first, with actor and reason."""
    events = await run_in_threadpool(lambda: _store(request).history(name, limit))
    return {"events": [e.to_dict() for e in events]}


@deployer.delete("/deployments/{name}")
async def delete_deployment(request: Request, name: str) -> dict[str, Any]:
    await run_in_threadpool(lambda: _store(request).delete(name, actor=actor_of(request)))
    _changed(request)
    return {"name": name, "deleted": True}


def _operation(action: Action) -> Any:
    operation = BY_OPERATOR[action]

    async def operate(request: Request, name: str, body: Reason | None = None) -> dict[str, Any]:
        reason = (body.reason if body else "") or f"{action.value} by operator"
        deployment = await run_in_threadpool(
            lambda: _store(request).transition(
                name, action, operation.change, reason=reason, actor=actor_of(request)
            )
        )
        assert deployment is not None  # no epoch given: the transition always applies
        _changed(request)
        return deployment.to_dict()

    operate.__name__ = f"{action.value}_deployment"
    operate.__doc__ = operation.summary
    return operate


for _action in BY_OPERATOR:
    deployer.post(f"/deployments/{{name}}/{_action.value}")(_operation(_action))

# last: including copies the routes defined so far
router.include_router(reader)
router.include_router(deployer)
