"""The router: which loaded version answers a request.

Every transport asks the router with what the caller named (``iris``, ``iris/3``,
``iris@production``, or nothing for the default model) and the request context; it answers
with a :class:`Target`. Today a name maps to one route following one registry address; this
is the one place where deployments (weights, sticky units, shadow copies) will plug in,
without any protocol module knowing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

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

    def __init__(self, address: ModelAddress) -> None:
        self.address = address
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

    @property
    def record(self) -> VersionRecord:
        return self.loaded.record

    @property
    def signature(self) -> Signature:
        return self.loaded.record.signature


class Router:
    def __init__(self, addresses: list[ModelAddress], default_model: str | None = None) -> None:
        names = [a.name for a in addresses]
        if len(set(names)) != len(names):
            raise ModelportError(f"each model can be served once; got {', '.join(names)}")
        self.routes = {a.name: Route(a) for a in addresses}
        self.default_model = default_model

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

    def default(self) -> Route:
        """The route answering un-named requests such as MLflow's ``/invocations``."""
        if self.default_model is not None:
            return self.route(self.default_model)
        if len(self.routes) == 1:
            return next(iter(self.routes.values()))
        raise ModelNotFoundError(
            "several models are served and none is the default; "
            "start the server with --default-model NAME"
        )

    def resolve(self, reference: str | None, version: int | None, ctx: InferenceContext) -> Target:
        """The target for a request, or a 404 / 503 that says why not; fills in ``ctx``."""
        route = self.default() if not reference else self.route(reference)
        if reference and reference != route.name and "/" in reference:
            version = ModelAddress.parse(reference).version
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
        ctx.version, ctx.slot = loaded.record.version, PRIMARY
        return Target(loaded, PRIMARY)

    def ready(self) -> bool:
        return all(r.current is not None for r in self.routes.values())

    def status(self) -> list[dict[str, Any]]:
        return [r.status() for r in self.routes.values()]


def version_number(name: str, version: str | None) -> int | None:
    """A version as a transport names it (a path segment, a gRPC field) as a number; text that
    is not a number (or absurdly long) names no version: 404, never a 500."""
    if version is None:
        return None
    if not (version.isascii() and version.isdigit()) or len(version) > 18:
        raise ModelVersionNotFoundError(f"model {name!r} has no version {version[:40]!r}")
    return int(version)
