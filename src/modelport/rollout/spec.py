"""The ModelDeployment resource: how a deployment should look, read from YAML (``modelport
apply -f``, several documents allowed) or from an HTTP body, in the Kubernetes habit
(apiVersion, kind, metadata, spec with camelCase keys). The rules it must follow are listed in
``manifest``; here the checked document becomes frozen dataclasses, and problems are located:
by JSON pointer and dotted path, and in YAML by line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from pydantic.alias_generators import to_camel

from modelport import documents
from modelport.documents import Problem
from modelport.rollout import manifest
from modelport.rollout.gates import GateLimits

API_VERSION = "modelport/v1"
KIND = "ModelDeployment"
DEFAULT_STEPS = (1.0, 5.0, 25.0, 50.0, 100.0)


class Role(StrEnum):
    PRIMARY = "primary"
    CANARY = "canary"
    SHADOW = "shadow"


class Strategy(StrEnum):
    DIRECT = "direct"
    BLUE_GREEN = "blue-green"
    CANARY = "canary"
    SHADOW = "shadow"


class OnBreach(StrEnum):
    ROLLBACK = "rollback"
    PAUSE = "pause"


@dataclass(frozen=True, slots=True)
class SlotSpec:
    """One model behind the deployment; ``weight`` is a percent of traffic (of requests
    mirrored, for a shadow). Under canary and blue-green the controller moves the weights:
    a spec holds their starting point, primary 100 and canary 0."""

    name: str
    model: str
    role: Role
    weight: float


@dataclass(frozen=True, slots=True)
class Sticky:
    """Where a request's unit id comes from, so that one unit always meets the same slot: the
    ``X-Unit-Id`` header, else (when set) an input column whose first row holds it."""

    field: str | None = None


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    """A validated ModelDeployment; build it with ``parse_document`` or ``load_yaml``."""

    name: str
    strategy: Strategy
    slots: tuple[SlotSpec, ...]
    steps: tuple[float, ...]
    step_interval_s: float
    min_requests: int
    evaluation_interval_s: float
    window_s: float
    gates: GateLimits
    on_breach: OnBreach
    sticky: Sticky
    warmup_requests: int
    labels: Mapping[str, str]

    def slot(self, name: str) -> SlotSpec:
        """The slot called ``name``; ``KeyError`` if there is none."""
        for slot in self.slots:
            if slot.name == name:
                return slot
        raise KeyError(name)

    @property
    def primary(self) -> SlotSpec:
        return next(slot for slot in self.slots if slot.role is Role.PRIMARY)

    @property
    def canary(self) -> SlotSpec | None:
        """The canary slot (the first one, when a direct deployment has several)."""
        return next((slot for slot in self.slots if slot.role is Role.CANARY), None)

    @property
    def shadow(self) -> SlotSpec | None:
        return next((slot for slot in self.slots if slot.role is Role.SHADOW), None)

    def to_document(self) -> dict[str, Any]:
        """The canonical document: defaults spelled out, and only the keys this strategy
        accepts, so that ``parse_document(spec.to_document()) == spec``."""
        canary = self.strategy is Strategy.CANARY
        spec: dict[str, Any] = {
            "strategy": self.strategy.value,
            "slots": [self._slot_document(slot) for slot in self.slots],
        }
        if canary:
            spec["steps"] = [_plain_number(step) for step in self.steps]
            spec["stepInterval"] = _duration_text(self.step_interval_s)
            spec["minRequests"] = self.min_requests
        spec["evaluationInterval"] = _duration_text(self.evaluation_interval_s)
        if canary or self.shadow is not None:
            limits = {f.name: getattr(self.gates, f.name) for f in fields(GateLimits)}
            spec["gates"] = {to_camel(k): v for k, v in limits.items() if v is not None}
            spec["gates"]["window"] = _duration_text(self.window_s)
        spec["rollback"] = {"onBreach": self.on_breach.value}
        if self.sticky.field is not None:
            spec["sticky"] = {"field": self.sticky.field}
        spec["warmup"] = {"requests": self.warmup_requests}
        metadata = {"name": self.name, "labels": dict(self.labels)}
        return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}

    def _slot_document(self, slot: SlotSpec) -> dict[str, Any]:
        document: dict[str, Any] = {"name": slot.name, "model": slot.model, "role": slot.role.value}
        if slot.role is Role.SHADOW or self.strategy in (Strategy.DIRECT, Strategy.SHADOW):
            document["weight"] = _plain_number(slot.weight)
        return document


def _duration_text(seconds: float) -> str | float:
    """``"5m"`` rather than ``300.0`` where that is exact; fractions stay numbers."""
    if not seconds.is_integer():
        return seconds
    whole = int(seconds)
    unit, size = next((u, s) for u, s in (("h", 3600), ("m", 60), ("s", 1)) if whole % s == 0)
    return f"{whole // size}{unit}"


def parse_document(document: object, *, source: str = "request") -> DeploymentSpec:
    """A deployment from a decoded JSON body; every problem becomes one ``FieldError``."""
    spec = documents.parse(document, validate, source=source)
    assert isinstance(spec, DeploymentSpec)
    return spec


def load_yaml(text: str, *, source: str = "deployment.yaml") -> list[DeploymentSpec]:
    """Every deployment in a YAML stream, problems located by line (see ``documents``)."""
    specs = documents.load_yaml(text, {KIND: validate}, source=source)
    return [spec for spec in specs if isinstance(spec, DeploymentSpec)]


def validate(document: object) -> DeploymentSpec | list[Problem]:
    checked = manifest.check(document)
    return _build(checked) if isinstance(checked, manifest.Manifest) else checked


def _plain_number(value: float) -> float | int:
    """``5`` rather than ``5.0`` in a document people read and edit (the same value)."""
    return int(value) if value.is_integer() else value


def _build(document: manifest.Manifest) -> DeploymentSpec:
    spec, gates = document.spec, document.spec.gates or manifest.Gates()
    step_interval = spec.step_interval or 300.0
    default_steps = DEFAULT_STEPS if spec.strategy == "canary" else ()
    return DeploymentSpec(
        name=document.metadata.name,
        strategy=Strategy(spec.strategy),
        slots=tuple(_build_slot(slot) for slot in spec.slots),
        steps=default_steps if spec.steps is None else tuple(spec.steps),
        step_interval_s=step_interval,
        min_requests=100 if spec.min_requests is None else spec.min_requests,
        evaluation_interval_s=spec.evaluation_interval,
        window_s=step_interval if gates.window is None else gates.window,
        gates=GateLimits(**gates.model_dump(exclude={"window"})),
        on_breach=OnBreach(spec.rollback.on_breach),
        sticky=Sticky(spec.sticky.field),
        warmup_requests=spec.warmup.requests,
        labels=MappingProxyType(dict(document.metadata.labels)),
    )


def _build_slot(slot: manifest.Slot) -> SlotSpec:
    # without a weight: a shadow mirrors everything, canary and blue-green start on the primary
    weight = 0.0 if slot.role == "canary" else 100.0
    return SlotSpec(
        name=slot.name or slot.role,
        model=slot.model,
        role=Role(slot.role),
        weight=weight if slot.weight is None else slot.weight,
    )
