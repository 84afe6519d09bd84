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

import difflib
import math
import re
from collections.abc import Iterator
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails, PydanticCustomError

from modelport.durations import parse_duration
from modelport.errors import InvalidInputError
from modelport.registry.address import ModelAddress

FieldPath = tuple[str | int, ...]
"""Where a problem is: keys and list indexes from the document's root."""
Problem = tuple[FieldPath, str]


def _seconds(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return parse_duration(value).total_seconds()
    except InvalidInputError:
        message = f"{value!r} is not a duration: write 30s, 5m, 1h or a number of seconds"
    except OverflowError:  # beyond what timedelta holds
        message = f"{value!r} is longer than 30 days"
    raise PydanticCustomError("duration", message)


def _model_reference(text: str) -> str:
    try:
        return str(ModelAddress.parse(text))
    except InvalidInputError as exc:
        raise PydanticCustomError("model_reference", exc.detail) from None


def _matching(pattern: str, message: str) -> AfterValidator:
    def matches(text: str) -> str:
        if re.fullmatch(pattern, text) is None:
            raise PydanticCustomError("pattern", message)
        return text

    return AfterValidator(matches)


_Seconds = Annotated[float, BeforeValidator(_seconds), Field(gt=0, le=30 * 86_400)]
_Percent = Annotated[float, Field(ge=0, le=100)]
_Share = Annotated[float, Field(ge=0, le=1)]
_Label = Annotated[
    str,
    _matching(
        r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?",
        "must be a DNS-1123 label: at most 63 lowercase letters, digits and '-', "
        "starting and ending with a letter or digit",
    ),
]


class _Shape(BaseModel):
    """The document as typed, before the rules that span fields; strict, so that a quoted
    ``"50"`` is not quietly taken for a number."""

    model_config = ConfigDict(
        extra="forbid", strict=True, alias_generator=to_camel, allow_inf_nan=False
    )


class _Metadata(_Shape):
    name: _Label
    labels: dict[
        Annotated[str, Field(min_length=1, max_length=63)], Annotated[str, Field(max_length=200)]
    ] = Field(default_factory=dict, max_length=64)


class Slot(_Shape):
    """One slot as written: name and weight may be left out (``spec`` fills them in)."""

    name: _Label | None = None
    model: Annotated[str, AfterValidator(_model_reference)]
    role: Literal["primary", "canary", "shadow"]
    weight: _Percent | None = None


class Gates(_Shape):
    """``GateLimits`` as written, plus the window they are evaluated over."""

    max_error_rate: _Share | None = None
    max_p99_ms: Annotated[float, Field(gt=0)] | None = None
    max_p99_increase: Annotated[float, Field(ge=0)] | None = None
    max_shadow_disagreement: _Share | None = None
    max_prediction_drift: Annotated[float, Field(gt=0)] | None = None
    window: _Seconds | None = None


class _Rollback(_Shape):
    on_breach: Literal["rollback", "pause"] = "rollback"


class _Sticky(_Shape):
    field: Annotated[str, Field(min_length=1)] | None = None


class _Warmup(_Shape):
    requests: Annotated[int, Field(ge=0, le=10_000)] = 1


class _Spec(_Shape):
    strategy: Literal["direct", "blue-green", "canary", "shadow"]
    # bounds keep an apply (every slot is resolved in the registry) and the stored row small
    slots: list[Slot] = Field(max_length=16)
    steps: list[Annotated[float, Field(gt=0, le=100)]] | None = Field(None, max_length=100)
    step_interval: _Seconds | None = None
    min_requests: Annotated[int, Field(ge=1)] | None = None
    evaluation_interval: _Seconds = 10.0
    gates: Gates | None = None
    rollback: _Rollback = Field(default_factory=_Rollback)
    sticky: _Sticky = Field(default_factory=_Sticky)
    warmup: _Warmup = Field(default_factory=_Warmup)


class Manifest(_Shape):
    """A whole document whose shape is right; ``check`` also applies the rules above."""

    api_version: Literal["modelport/v1"]
    kind: Literal["ModelDeployment"]
    metadata: _Metadata
    spec: _Spec


def check(document: object) -> Manifest | list[Problem]:
    """The document, if it is a valid ModelDeployment; otherwise every problem found."""
    try:
        shape = Manifest.model_validate(document)
    except PydanticValidationError as exc:
        return [_shape_problem(error) for error in exc.errors()]
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


def _shape_problem(error: ErrorDetails) -> Problem:
    """Pydantic's complaint in this module's words (``must be ...``, ``did you mean ...``)."""
    path = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        return path, _unknown_key(path)
    if error["type"] == "missing":
        return path, "required"
    if error["type"] == "model_type":
        return path, "must be a mapping"
    message = re.sub(r"^(Input|String|List|Dictionary) should", "must", error["msg"])
    return path, message.replace(" after validation", "")


def _unknown_key(path: FieldPath) -> str:
    model: type[BaseModel] = Manifest
    for part in path[:-1]:
        if isinstance(part, str):
            annotation = next(f.annotation for f in model.model_fields.values() if f.alias == part)
            model = next(
                t
                for t in get_args(annotation) or (annotation,)
                if isinstance(t, type) and issubclass(t, BaseModel)
            )
    known = [field.alias or name for name, field in model.model_fields.items()]
    close = difflib.get_close_matches(str(path[-1]), known, n=1)
    if close:
        return f"unknown field; did you mean {close[0]!r}?"
    return f"unknown field; expected one of {', '.join(known)}"
