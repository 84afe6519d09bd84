"""``/api/keys``: create, list, revoke and rotate API keys (an ``admin`` key's work).

A new token appears once, in the answer that creates it; afterwards only its id is shown.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from modelport.durations import parse_duration
from modelport.security.keys import IssuedKey, Scope
from modelport.serving.http.access import actor_of, changes, requires
from modelport.serving.http.state import serving_state

router = APIRouter(prefix="/api", tags=["keys"])
reader = APIRouter(dependencies=[requires(Scope.ADMIN)])
admin = APIRouter(dependencies=changes(Scope.ADMIN))


class NewKey(BaseModel):
    scope: Scope = Field(
        description="read, predict, deploy or admin (each includes the ones before)."
    )
    name: str = Field("", max_length=200, description="What the key is for.")
    models: list[str] | None = Field(None, description="Restrict the key to these models.")
    expires_in: str | None = Field(None, description="Lifetime such as 90d or 12h; none: never.")
    rate_limit: str | None = Field(
        None, description="Inference budget such as 100/s:200; none: the server's default."
    )


class Rotation(BaseModel):
    grace: str = Field("0s", description="How long the old key keeps working, e.g. 1h.")


@reader.get("/keys")
async def list_keys(request: Request, all: bool = False) -> dict[str, Any]:
    """Keys (never their tokens); revoked and expired ones with ``all=true``."""
    keys = serving_state(request).access.authenticator.store
    listed = await run_in_threadpool(lambda: keys.list(include_inactive=all))
    return {"keys": [k.to_dict() for k in listed]}


@admin.post("/keys", status_code=201)
async def create_key(request: Request, body: NewKey) -> dict[str, Any]:
    expires = (
        None if body.expires_in is None else parse_duration(body.expires_in, field="expires_in")
    )
    keys = serving_state(request).access.authenticator.store
    issued = await run_in_threadpool(
        lambda: keys.create(
            body.scope,
            actor=actor_of(request),
            name=body.name,
            models=body.models,
            expires_in=expires,
            rate_limit=body.rate_limit,
        )
    )
    return _issued(issued)


@admin.delete("/keys/{key_id}")
async def revoke_key(request: Request, key_id: str) -> dict[str, Any]:
    """Revoke at once in this process; other workers and replicas within auth_refresh_s."""
    authenticator = serving_state(request).access.authenticator
    key = await run_in_threadpool(
        lambda: authenticator.store.revoke(key_id, actor=actor_of(request))
    )
    await authenticator.reload()
    return key.to_dict()


@admin.post("/keys/{key_id}/rotate", status_code=201)
async def rotate_key(request: Request, key_id: str, body: Rotation) -> dict[str, Any]:
    """A new token with the same rights; the old one works for ``grace`` more."""
    grace = parse_duration(body.grace, field="grace")
    authenticator = serving_state(request).access.authenticator
    issued = await run_in_threadpool(
        lambda: authenticator.store.rotate(key_id, grace=grace, actor=actor_of(request))
    )
    await authenticator.reload()
    return _issued(issued)


def _issued(issued: IssuedKey) -> dict[str, Any]:
    return {**issued.key.to_dict(), "token": issued.token}


# last: including copies the routes defined so far
router.include_router(reader)
router.include_router(admin)
