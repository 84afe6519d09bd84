"""A deployment as the router sees it: slots with weights, a sticky choice, a shadow.

Each request draws a point in [0, 1): from a stable hash of the deployment and the caller's
unit id when there is one (so one user keeps seeing one variant while the weights hold), at
random otherwise. The primary owns the bottom of the interval and the other slots the top, so
a canary that grows from 5 % to 25 % keeps every unit it already had. Slots that are not loaded
in this process are skipped: their share goes to the slots that are, and a request never waits
for a model that is still loading.

While an experiment runs on the deployment, a unit is enrolled when a first stable point falls
under the experiment's share, and then meets the variant a second, independent point picks by
the slots' weights; everyone else meets the control. A ramp from 5 % to 25 % thus keeps every
enrolled unit in its variant. An enrolled unit whose variant is not loaded here meets the
control and is not counted, rather than being moved to another variant.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from modelport.errors import ModelVersionNotFoundError
from modelport.inference.context import InferenceContext
from modelport.inference.router import Route
from modelport.rollout.spec import Role
from modelport.rollout.state import Allocation
from modelport.rollout.store import Deployment

_SCALE = float(2**64)


@dataclass(frozen=True, slots=True)
class Slot:
    name: str
    route: Route
    weight: float
    """Percent of traffic (for the shadow: percent of requests mirrored)."""


class DeploymentEndpoint:
    def __init__(self, deployment: Deployment, routes: dict[str, Route]) -> None:
        """``routes``: one route per slot name (reused across revisions by the watcher, so a
        slot whose model did not change is never loaded twice)."""
        spec, state = deployment.spec, deployment.state
        self.deployment = deployment
        self.name = deployment.name
        self.epoch = state.epoch
        self.revision = deployment.revision
        serving = [s for s in spec.slots if s.role is not Role.SHADOW]
        serving.sort(key=lambda s: s.role is not Role.PRIMARY)  # the primary at the bottom
        self.slots = [Slot(s.name, routes[s.name], state.weights.get(s.name, 0.0)) for s in serving]
        shadow = spec.shadow
        self.shadow = (
            None if shadow is None else Slot(shadow.name, routes[shadow.name], shadow.weight)
        )
        self._primary = self.slots[0]
        self._weighted = [s for s in self.slots if s.weight > 0]
        self._weight_total = sum(s.weight for s in self._weighted)
        self.unit_field = spec.sticky.field
        self._salt = f"{spec.name}:".encode()
        self.allocation = state.experiment
        self._variant_salt = (
            b""
            if self.allocation is None
            else f"{spec.name}:{self.allocation.experiment}:".encode()
        )

    def choose(self, ctx: InferenceContext, version: int | None) -> tuple[str, Route]:
        if version is not None:
            return self._serving_version(version)
        if self.allocation is not None:
            return self._enrolled(ctx, self.allocation)
        live, total = self._weighted, self._weight_total
        for slot in live:  # while every weighted slot is loaded: the weights as written
            if slot.route.current is None:
                live = [s for s in self._weighted if s.route.current is not None]
                total = sum(s.weight for s in live)
                break
        if not live:
            return self._primary.name, self._primary.route  # the router answers 503 not ready
        if len(live) == 1:
            return live[0].name, live[0].route
        point = self._point(ctx.unit_id) * total
        for slot in live:
            point -= slot.weight
            if point < 0:
                return slot.name, slot.route
        return live[-1].name, live[-1].route

    def routes(self) -> Iterator[Route]:
        yield from (s.route for s in self.slots)
        if self.shadow is not None:
            yield self.shadow.route

    def ready(self) -> bool:
        return any(s.weight > 0 and s.route.current is not None for s in self.slots)

    def status(self) -> dict[str, Any]:
        """What each slot serves in this process (the replica heartbeat, ``/readyz``)."""
        slots = [*self.slots, *([self.shadow] if self.shadow is not None else [])]
        return {
            "name": self.name,
            "revision": self.revision,
            "epoch": self.epoch,
            "phase": self.deployment.state.phase.value,
            "slots": [{**s.route.status(), "slot": s.name, "weight": s.weight} for s in slots],
            "experiment": None if self.allocation is None else self.allocation.to_json(),
        }

    def _enrolled(self, ctx: InferenceContext, allocation: Allocation) -> tuple[str, Route]:
        """The variant of an enrolled unit (noted in ``ctx.experiment``), else the control."""
        control = next(s for s in self.slots if s.name == allocation.control)
        unit = ctx.request_id if allocation.per_request else ctx.unit_id
        if unit is None or self._point(unit) * 100.0 >= allocation.share:
            return control.name, control.route
        variants = [s for s in self.slots if s.weight > 0]
        point = self._point(unit, self._variant_salt) * sum(s.weight for s in variants)
        chosen = variants[-1]
        for slot in variants:
            point -= slot.weight
            if point < 0:
                chosen = slot
                break
        if chosen.route.current is None:
            return control.name, control.route
        ctx.experiment = allocation.experiment
        return chosen.name, chosen.route

    def _point(self, unit: str | None, salt: bytes | None = None) -> float:
        if unit is None:
            return random.random()
        key = (self._salt if salt is None else salt) + unit.encode()
        digest = hashlib.blake2b(key, digest_size=8).digest()
        return int.from_bytes(digest) / _SCALE

    def _serving_version(self, version: int) -> tuple[str, Route]:
        """A caller asking for a version explicitly gets the slot serving it, whatever the
        weights (to compare variants by hand)."""
        for slot in self.slots:
            current = slot.route.current
            if current is not None and current.record.version == version:
                return slot.name, slot.route
        raise ModelVersionNotFoundError(
            f"deployment {self.name!r} serves no version {version} in any slot"
        )
