"""The router: which loaded version answers a request.

Every transport asks the router with what the caller named (``iris``, ``iris/3``,
``iris@production``, a deployment, or nothing for the default) and the request context; it
answers with a :class:`Target`. A model name maps to one route following one registry
address. An :class:`Endpoint` (a deployment, see :mod:`modelport.rollout`) is a name that
chooses one of several routes per request (weights, sticky units); endpoints are installed
and replaced at run time, and no protocol module knows they exist.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from modelport.errors import (
    ModelNotFoundError,
    ModelNotReadyError,
    ModelportError,
    ModelVersionNotFoundError,
)
from modelport.inference.context import InferenceContext
from modelport.inference.pool import LoadedVersion
from modelport.registry import ModelAddress, VersionRecord
from modelport.runtimes.signature import Signature

PRIMARY = "primary"


class RouteState(StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class Route:
    """One model name the server answers for, following a registry address."""

    def __init__(self, address: ModelAddress, warmup: int = 1) -> None:
        self.address = address
        self.warmup = warmup
        """Warm-up calls on load (a blue-green colour may ask for many before it is live)."""
        self.current: LoadedVersion | None = None
        self.last_error: str | None = None
        self.failed_version: int | None = None
        """A version that failed for good; not tried again until the address moves."""
        self.retry_at = 0.0
        """After a transient failure, when to try again (monotonic clock)."""
        self.attempts = 0

    @property
    def name(self) -> str:
        return self.address.name

    @property
    def state(self) -> RouteState:
        if self.current is not None:
            return RouteState.READY
        return RouteState.FAILED if self.last_error else RouteState.LOADING

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": str(self.address),
            "state": self.state.value,
            "version": self.current.record.version if self.current else None,
            "last_error": self.last_error,
            "failed_version": self.failed_version,
        }

    def serving(self, loaded: LoadedVersion) -> LoadedVersion | None:
        """Switch to ``loaded`` (one reference assignment); returns the version it replaces."""
        previous, self.current = self.current, loaded
        self.last_error, self.failed_version, self.attempts, self.retry_at = None, None, 0, 0.0
        return previous

    def failed(self, message: str, *, version: int | None, retry_in_s: float | None) -> bool:
        """Record a failure; True when it is news (worth a log line)."""
        news = message != self.last_error
        self.last_error = message
        if retry_in_s is None:
            self.failed_version = version
        else:
            self.attempts += 1
            self.retry_at = time.monotonic() + retry_in_s
        return news


@dataclass(frozen=True, slots=True)
class Target:
    """What answers one request: a loaded version, and the slot it fills for its route."""

    loaded: LoadedVersion
    slot: str
    unit_field: str | None = None
    """An input column whose value routes the request (a deployment sticky by body field)."""

    @property
    def record(self) -> VersionRecord:
        return self.loaded.record

    @property
    def signature(self) -> Signature:
        return self.loaded.record.signature


class Endpoint(Protocol):
    """A name that picks one of several routes for each request: a deployment."""

    @property
    def name(self) -> str: ...

    def choose(self, ctx: InferenceContext, version: int | None) -> tuple[str, Route]:
        """The slot that answers (its name, its route); ``version`` asks for the slot
        serving that version."""
        ...

    @property
    def unit_field(self) -> str | None:
        """An input column carrying the unit id, when the caller sends no ``X-Unit-Id``."""
        ...

    def routes(self) -> Iterable[Route]:
        """Every route the endpoint may need loaded (its shadow's too)."""
        ...

    def ready(self) -> bool:
        """Whether a request would find a loaded slot."""
        ...

    def status(self) -> dict[str, Any]: ...


class Router:
    def __init__(self, addresses: list[ModelAddress], default_model: str | None = None) -> None:
        names = [a.name for a in addresses]
        if len(set(names)) != len(names):
            raise ModelportError(f"each model can be served once; got {', '.join(names)}")
        self.routes = {a.name: Route(a) for a in addresses}
        self.default_model = default_model
        self.endpoints: Mapping[str, Endpoint] = {}
        """Replaced whole (one assignment) when deployments change; a name here wins over a
        model of the same name."""

    def all_routes(self) -> list[Route]:
        """Every route to keep loaded: served models and every endpoint's slots."""
        extra = [r for endpoint in self.endpoints.values() for r in endpoint.routes()]
        return [*self.routes.values(), *extra]

    def route(self, name: str) -> Route:
        """The route behind a name: ``iris``, or ``iris@alias`` / ``iris/3``."""
        route = self.routes.get(name)
        if route is None and ("@" in name or "/" in name):
            address = ModelAddress.parse(name)
            candidate = self.routes.get(address.name)
            if candidate is not None and (
                address.alias is None or candidate.address.alias == address.alias
            ):
                route = candidate
        if route is None:
            raise ModelNotFoundError(
                f"model {name!r} is not served here (served: {', '.join(self.routes) or 'none'})"
            )
        return route

    def default_name(self) -> str:
        """What answers un-named requests such as MLflow's ``/invocations``."""
        if self.default_model is not None:
            return self.default_model
        names = [*self.routes, *self.endpoints]
        if len(names) == 1:
            return names[0]
        raise ModelNotFoundError(
            "several models are served and none is the default; "
            "start the server with --default-model NAME"
        )

    def resolve(self, reference: str | None, version: int | None, ctx: InferenceContext) -> Target:
        """The target for a request, or a 404 / 503 that says why not; fills in ``ctx``."""
        name = reference or self.default_name()
        endpoint = self.endpoints.get(name)
        if endpoint is not None:
            ctx.deployment = endpoint.name
            slot, route = endpoint.choose(ctx, version)
            return self._target(route, None, slot, ctx, endpoint.unit_field)
        route = self.route(name)
        if name != route.name and "/" in name:
            version = ModelAddress.parse(name).version
        return self._target(route, version, PRIMARY, ctx)

    def _target(
        self,
        route: Route,
        version: int | None,
        slot: str,
        ctx: InferenceContext,
        unit_field: str | None = None,
    ) -> Target:
        ctx.model = route.name
        loaded = route.current
        if loaded is None:
            reason = f": {route.last_error}" if route.last_error else " yet"
            raise ModelNotReadyError(f"model {route.name!r} is not loaded{reason}")
        if version is not None and version != loaded.record.version:
            raise ModelVersionNotFoundError(
                f"model {route.name!r} serves version {loaded.record.version}, "
                f"not version {version}"
            )
        ctx.version, ctx.slot = loaded.record.version, slot
        return Target(loaded, slot, unit_field)

    def ready(self) -> bool:
        """Every served model loaded, and every endpoint able to answer (a canary that fails
        to load must not take the whole replica out of service)."""
        return all(r.current is not None for r in self.routes.values()) and all(
            e.ready() for e in self.endpoints.values()
        )

    def waiting(self) -> list[str]:
        """What keeps the router from being ready, one phrase each."""
        models = [f"{r.name} ({r.state.value})" for r in self.routes.values() if r.current is None]
        return models + [f"deployment {e.name}" for e in self.endpoints.values() if not e.ready()]

    def default_problem(self) -> str | None:
        """Why the default model cannot answer yet (MLflow's ``/ping``); None when it can."""
        name = self.default_name()
        endpoint = self.endpoints.get(name)
        if endpoint is not None:
            return None if endpoint.ready() else f"deployment {name!r} has no loaded slot yet"
        route = self.route(name)
        if route.current is not None:
            return None
        reason = f": {route.last_error}" if route.last_error else " yet"
        return f"model {route.name!r} is not loaded{reason}"

    def status(self) -> list[dict[str, Any]]:
        return [r.status() for r in self.routes.values()]

    def deployments(self) -> list[dict[str, Any]]:
        return [e.status() for e in self.endpoints.values()]


def version_number(name: str, version: str | None) -> int | None:
    """A version as a transport names it (a path segment, a gRPC field) as a number; text that
    is not a number (or absurdly long) names no version: 404, never a 500."""
    if version is None:
        return None
    if not (version.isascii() and version.isdigit()) or len(version) > 18:
        raise ModelVersionNotFoundError(f"model {name!r} has no version {version[:40]!r}")
    return int(version)
