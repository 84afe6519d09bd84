"""A ModelDeployment document as written: its shape, checked by pydantic, then the rules
across its fields, checked here so that every problem is reported at once, by its path.

* every deployment has exactly one primary slot and at most one shadow slot;
* ``direct``: any number of canary slots (A/B/C variants); the primary and canary weights are
  given and sum to 100 (a lone primary may leave its weight out);
* ``canary``: exactly one canary slot; the steps decide the weights, so none are given;
  only this strategy takes ``steps``, ``stepInterval``, ``minRequests`` and the SLO gates;
* ``blue-green``: exactly one canary slot (the new colour); the switch decides, so no weights;
* ``shadow``: no canary slot, exactly one shadow slot; weights as for ``direct``;
* a shadow's weight is the share of requests mirrored to it, 0 < w <= 100 (default 100);
  ``gates.maxShadowDisagreement`` needs a shadow slot, ``gates.window`` any allowed gate;
* ``evaluationInterval``, ``rollback``, ``sticky`` and ``warmup`` suit every strategy;
* durations are ``30s``/``5m``/``1h`` or numbers of seconds, above 0 and at most 30 days;
  unknown keys are errors, and a quoted number is not a number.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import Field
from pydantic import ValidationError as PydanticValidationError
from pydantic.alias_generators import to_camel

from modelport.documents import (
    FieldPath,
    Label,
    Metadata,
    ModelReference,
    Percent,
    Problem,
    Seconds,
    Shape,
    Share,
    shape_problem,
)


class Slot(Shape):
    """One slot as written: name and weight may be left out (``spec`` fills them in)."""

    name: Label | None = None
    model: ModelReference
    role: Literal["primary", "canary", "shadow"]
    weight: Percent | None = None


class Gates(Shape):
    """``GateLimits`` as written, plus the window they are evaluated over."""

    max_error_rate: Share | None = None
    max_p99_ms: Annotated[float, Field(gt=0)] | None = None
    max_p99_increase: Annotated[float, Field(ge=0)] | None = None
    max_shadow_disagreement: Share | None = None
    max_prediction_drift: Annotated[float, Field(gt=0)] | None = None
    window: Seconds | None = None


class _Rollback(Shape):
    on_breach: Literal["rollback", "pause"] = "rollback"


class _Sticky(Shape):
    field: Annotated[str, Field(min_length=1)] | None = None


class _Warmup(Shape):
    requests: Annotated[int, Field(ge=0, le=10_000)] = 1


class _Spec(Shape):
    strategy: Literal["direct", "blue-green", "canary", "shadow"]
    # bounds keep an apply (every slot is resolved in the registry) and the stored row small
    slots: list[Slot] = Field(max_length=16)
    steps: list[Annotated[float, Field(gt=0, le=100)]] | None = Field(None, max_length=100)
    step_interval: Seconds | None = None
    min_requests: Annotated[int, Field(ge=1)] | None = None
    evaluation_interval: Seconds = 10.0
    gates: Gates | None = None
    rollback: _Rollback = Field(default_factory=_Rollback)
    sticky: _Sticky = Field(default_factory=_Sticky)
    warmup: _Warmup = Field(default_factory=_Warmup)


class Manifest(Shape):
    """A whole document whose shape is right; ``check`` also applies the rules above."""

    api_version: Literal["modelport/v1"]
    kind: Literal["ModelDeployment"]
    metadata: Metadata
    spec: _Spec


def check(document: object) -> Manifest | list[Problem]:
    """The document, if it is a valid ModelDeployment; otherwise every problem found."""
    try:
        shape = Manifest.model_validate(document)
    except PydanticValidationError as exc:
        return [shape_problem(error, Manifest) for error in exc.errors()]
    spec = shape.spec
    problems = [
        *_slot_problems(spec),
        *_weight_problems(spec),
        *_canary_problems(spec),
        *_gate_problems(spec),
    ]
    return problems or shape


_CANARY_SLOTS = {"direct": (0, None), "canary": (1, 1), "blue-green": (1, 1), "shadow": (0, 0)}
_HOW_MANY = {(1, 1): "exactly one", (0, 1): "at most one", (0, 0): "no"}


def _slot_problems(spec: _Spec) -> Iterator[Problem]:
    first: dict[str, int] = {}
    for i, slot in enumerate(spec.slots):
        name = slot.name or slot.role
        if first.setdefault(name, i) != i:
            yield ("spec", "slots", i, "name"), f"slot {first[name]} is called {name!r} too"
    shadows = (1, 1) if spec.strategy == "shadow" else (0, 1)
    bounds = {"primary": (1, 1), "canary": _CANARY_SLOTS[spec.strategy], "shadow": shadows}
    for role, (fewest, most) in bounds.items():
        if most is None:
            continue
        rule = f"a {spec.strategy} deployment has {_HOW_MANY[fewest, most]} {role} slot"
        if spec.strategy == "blue-green" and role == "canary":
            rule += " (the new colour)"
        indexes = [i for i, slot in enumerate(spec.slots) if slot.role == role]
        if len(indexes) < fewest:
            yield ("spec", "slots"), f"missing slot: {rule}"
        for i in indexes[most:]:
            yield ("spec", "slots", i, "role"), f"one {role} slot too many: {rule}"


_DECIDERS = {"canary": "the canary steps decide", "blue-green": "the blue-green switch decides"}


def _weight_problems(spec: _Spec) -> Iterator[Problem]:
    decider = _DECIDERS.get(spec.strategy)
    serving: list[tuple[FieldPath, float | None]] = []
    for i, slot in enumerate(spec.slots):
        path: FieldPath = ("spec", "slots", i, "weight")
        if slot.role == "shadow":
            if slot.weight == 0:
                yield path, "must be above 0 (the percent of requests mirrored to the shadow)"
        elif decider is None:
            serving.append((path, slot.weight))
        elif slot.weight is not None:
            yield path, f"{decider} the weights of a {spec.strategy} deployment; leave it out"
    if len(serving) == 1 and serving[0][1] is None:
        return  # a lone primary takes all the traffic
    given = [weight for _, weight in serving if weight is not None]
    for path, weight in serving:
        if weight is None:
            yield path, "required when several slots share the traffic"
    if given and len(given) == len(serving) and not math.isclose(sum(given), 100, abs_tol=1e-9):
        yield ("spec", "slots"), f"primary and canary weights sum to {sum(given):g}, not 100"


def _canary_problems(spec: _Spec) -> Iterator[Problem]:
    if spec.strategy != "canary":
        for name in ("steps", "step_interval", "min_requests"):
            if getattr(spec, name) is not None:
                yield ("spec", to_camel(name)), f"only a canary deployment takes {to_camel(name)}"
        return
    steps = spec.steps
    if steps is None:
        return
    for i in range(1, len(steps)):
        if steps[i] <= steps[i - 1]:
            yield ("spec", "steps", i), f"must be above the step before it ({steps[i - 1]:g})"
    if not steps or steps[-1] != 100:
        yield ("spec", "steps"), "must end with 100 (all of the traffic)"


def _gate_problems(spec: _Spec) -> Iterator[Problem]:
    if spec.gates is None:
        return
    canary = spec.strategy == "canary"
    shadow = any(slot.role == "shadow" for slot in spec.slots)
    allowed = {"window": canary or shadow, "max_shadow_disagreement": shadow}
    refused = {
        "window": "no gate applies to this deployment",
        "max_shadow_disagreement": "needs a shadow slot to compare with the primary",
    }
    for name in Gates.model_fields:
        if getattr(spec.gates, name) is not None and not allowed.get(name, canary):
            message = refused.get(name, "only a canary deployment takes this gate")
            yield ("spec", "gates", to_camel(name)), message
