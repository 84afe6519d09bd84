"""Who may call which HTTP route: every route states the scope it needs, or that it is open.

Authentication happens in the :class:`~modelport.serving.http.front.Front` (the request
context then carries the key id); the dependencies here authorise. They are FastAPI
``Security`` dependencies, so the OpenAPI document names the scope of every operation (a test
walks it: a route with neither a scope nor a place in :data:`OPEN_PATHS` fails the suite).
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPBearer, SecurityScopes

from modelport.errors import ForbiddenError
from modelport.registry import Actor
from modelport.security.keys import Scope
from modelport.serving.http.state import serving_state

OPEN_PATHS = frozenset(
    {
        "/healthz",
        "/readyz",
        "/v2/health/live",
        "/v2/health/ready",
        "/ping",
        "/health",
        "/version",
    }
)
"""Probes: answered without a key, whatever the mode (they reveal no model data)."""

BEARER = "bearer"
API_KEY = "apiKey"
_bearer = HTTPBearer(auto_error=False, scheme_name=BEARER, description="Authorization: Bearer")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name=API_KEY)


def _authoriser(public_ok: bool) -> Any:
    async def authorise(
        request: Request,
        scopes: SecurityScopes,
        _bearer_token: Any = Depends(_bearer),
        _header_token: Any = Depends(_api_key),
    ) -> None:
        # the two schemes only document where the key goes: the Front already checked it
        access = serving_state(request).access
        key = access.authenticator.key(request.state.ctx.caller)
        needed = max((Scope(s) for s in scopes.scopes), key=list(Scope).index)
        access.check(key, needed, request.path_params.get("name"), public_ok=public_ok)

    return authorise


_AUTHORISERS = {False: _authoriser(False), True: _authoriser(True)}


def requires(scope: Scope, *, public_ok: bool = False) -> Any:
    """Dependency: the caller's key must include ``scope`` (and the path's model, if any);
    ``public_ok``: not for a public model (protocol metadata, never the management API)."""
    return Security(_AUTHORISERS[public_ok], scopes=[scope.value])


async def _changes_allowed(request: Request) -> None:
    """With authentication off, registry changes over HTTP are opt-in."""
    state = serving_state(request)
    if not state.access.required and not state.settings.allow_remote_admin:
        raise ForbiddenError(
            "this server does not accept changes over HTTP without API keys: use the "
            "modelport CLI, turn on MODELPORT_AUTH, or start it with "
            "MODELPORT_ALLOW_REMOTE_ADMIN=true"
        )


def changes(scope: Scope) -> list[Any]:
    """Dependencies of a route that changes state: ``scope``, and the opt-in without keys."""
    return [requires(scope), Depends(_changes_allowed)]


def actor_of(request: Request) -> Actor:
    """Who the audit log records for a change made through this request."""
    ctx = request.state.ctx
    return Actor(
        f"key:{ctx.caller}" if ctx.caller else "anonymous",
        key_id=ctx.caller,
        request_id=ctx.request_id,
        client=request.client.host if request.client else None,
    )


def security_of(scope: Scope) -> list[dict[str, list[str]]]:
    """The OpenAPI ``security`` entry of an operation needing ``scope``."""
    return [{BEARER: [scope.value]}, {API_KEY: [scope.value]}]
